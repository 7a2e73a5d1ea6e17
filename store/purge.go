package store

import (
	"context"
	"slices"
	"time"

	"github.com/thiqa/thiqa/enrol"
)

// Purges of transient rows: each statement deletes at most a batch of
// rows, so that it never holds its locks long, and several instances
// sharing one PostgreSQL database may purge at once (a row another
// instance is deleting is skipped, not waited for).

var _ enrol.Purger = (*Enrolments)(nil)

// purgeBatchRows bounds the rows one DELETE of Identity.Purge and
// DeleteExpiredSADs removes; purgeRounds bounds the batches of one call
// (the next call, a minute later, goes on).
const (
	purgeBatchRows = 1000
	purgeRounds    = 100
)

// purgeBatches deletes the rows of table matching where, one batch of at
// most purgeBatchRows rows per transaction, until a batch is not full,
// and returns how many went.
func (db *DB) purgeBatches(ctx context.Context, table, key, where string, args ...any) (int64, error) {
	var total int64
	for range purgeRounds {
		var n int64
		err := db.writeTx(ctx, func(t *txn) error {
			var err error
			n, err = t.deleteBatch(ctx, table, key, where, purgeBatchRows, args...)
			return err
		})
		if err != nil {
			return total, mapErr("store: purging "+table, err)
		}
		total += n
		if n < purgeBatchRows {
			break
		}
	}
	return total, nil
}

// deleteBatch deletes at most limit rows of table matching where (whose
// ? take args), naming them by their key columns (the primary key, comma
// separated), and returns how many went. On PostgreSQL rows locked by
// another transaction are skipped.
func (t *txn) deleteBatch(ctx context.Context, table, key, where string, limit int, args ...any) (int64, error) {
	pick := `SELECT ` + key + ` FROM ` + table + ` WHERE ` + where + ` LIMIT ?`
	if t.db.dialect == DriverPostgres {
		pick += ` FOR UPDATE SKIP LOCKED`
	}
	res, err := t.exec(ctx, `DELETE FROM `+table+` WHERE (`+key+`) IN (`+pick+`)`, append(slices.Clip(args), limit)...)
	if err != nil {
		return 0, err
	}
	return res.RowsAffected()
}

// PurgeEnrolments deletes at most limit enrolments that expired before
// cutoff or were used before cutoff (enrol.Purger); an enrolment still
// valid at cutoff and not used is never deleted.
func (s *Enrolments) PurgeEnrolments(ctx context.Context, cutoff time.Time, limit int) (int64, error) {
	if limit <= 0 {
		return 0, nil
	}
	var total int64
	err := s.db.writeTx(ctx, func(t *txn) error {
		total = 0
		n, err := t.deleteBatch(ctx, "enrolments", "reference", `expires_at < ?`, limit, cutoff.UnixNano())
		if err != nil {
			return err
		}
		total = n
		if rest := limit - int(n); rest > 0 {
			n, err = t.deleteBatch(ctx, "enrolments", "reference", `state = 'used' AND used_at < ?`, rest, cutoff.UnixNano())
			if err != nil {
				return err
			}
			total += n
		}
		return nil
	})
	if err != nil {
		return 0, mapErr("store: purging enrolments", err)
	}
	return total, nil
}

// PurgeTransactions deletes at most limit CMP transactions created and
// closed before cutoff (enrol.Purger). One still waiting for its certConf,
// whose certificate a server is revoking (expiring), or whose certConf's
// follow-up is undone (rejecting, confirming), is never deleted: the
// sweep of unconfirmed certificates closes it first.
func (s *Enrolments) PurgeTransactions(ctx context.Context, cutoff time.Time, limit int) (int64, error) {
	if limit <= 0 {
		return 0, nil
	}
	var n int64
	err := s.db.writeTx(ctx, func(t *txn) error {
		var err error
		n, err = t.deleteBatch(ctx, "cmp_transactions", "transaction_id",
			`created_at < ? AND state NOT IN ('waiting', 'expiring', 'rejecting', 'confirming') AND closed_at < ?`, limit, cutoff.UnixNano(), cutoff.UnixNano())
		return err
	})
	if err != nil {
		return 0, mapErr("store: purging CMP transactions", err)
	}
	return n, nil
}
