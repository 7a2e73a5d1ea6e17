package store

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// namedLockClass is the first key of the PostgreSQL advisory locks that
// Exclusive takes ("thiq" as a big-endian int32); the second is the hash of
// the lock's name. Two-key advisory locks never meet the one-key migration
// lock (migrationLockKey).
const namedLockClass int32 = 0x74686971

// errExclusiveFn rolls back Exclusive's transaction when fn failed; fn's
// own error is what Exclusive returns.
var errExclusiveFn = errors.New("store: the work under the lock failed")

// Exclusive runs fn while this database's exclusive lock named name is
// held, so that of all the processes sharing the database (the nodes of a
// cluster) one at a time runs work under that name: on PostgreSQL a
// transaction-scoped advisory lock on the name's hash, on SQLite the write
// lock of a BEGIN IMMEDIATE transaction (one for every name). A second
// holder waits until the first's fn returned, or until ctx ends. fn runs
// at most once and its error is returned as it is.
//
// fn must be short and must not write through db: on SQLite the lock is
// the database's one writer, which fn would wait for, and every other
// writer, in this process or another, waits for fn (another process gives
// up after the busy timeout, 10 s, and its transaction retries).
func (db *DB) Exclusive(ctx context.Context, name string, fn func(ctx context.Context) error) error {
	if name == "" {
		return errors.New("store: an exclusive lock needs a name")
	}
	var ran bool
	var fnErr error
	for attempt := 1; ; attempt++ {
		err := db.tryTx(ctx, func(t *txn) error {
			if db.dialect == DriverPostgres {
				if _, err := t.exec(ctx, "SELECT pg_advisory_xact_lock(?, hashtext(?))", namedLockClass, name); err != nil {
					return err
				}
			}
			ran = true
			if fnErr = fn(ctx); fnErr != nil {
				return errExclusiveFn
			}
			return nil
		})
		switch {
		case fnErr != nil:
			return fnErr
		case err == nil:
			return nil
		case ran || !isRetryable(err) || attempt == maxTxAttempts || ctx.Err() != nil:
			// Once fn ran, never again (a failed commit of a
			// transaction that wrote nothing is all that is left).
			return fmt.Errorf("store: exclusive lock %q: %w", name, err)
		}
		db.logger.Debug("store: retrying an exclusive lock", "name", name, "attempt", attempt, "err", err)
		pause := time.NewTimer(time.Duration(attempt*attempt) * 5 * time.Millisecond)
		select {
		case <-ctx.Done():
			pause.Stop()
			return fmt.Errorf("store: exclusive lock %q: %w", name, err)
		case <-pause.C:
		}
	}
}
