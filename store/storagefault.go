package store

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"

	"github.com/thiqa/thiqa/internal/outage"
)

// isStorageFault reports whether err says the database could not be
// written because of the disk under it: SQLite's SQLITE_FULL, an I/O
// error, a file it cannot open or a database (or its folder) gone
// read-only, PostgreSQL's disk_full (53100) or io_error (58030), or an
// ENOSPC, EDQUOT, EROFS or EIO from the file system. The statement took no
// effect, and the same write succeeds once an operator has freed space:
// like a lost connection, it is marked as an outage (unavailable). A
// plain SQLITE_READONLY is not one: it is a write on the read pool's
// query-only connections, a bug.
func isStorageFault(err error) bool {
	if err == nil {
		return false
	}
	var se *sqlite.Error
	if errors.As(err, &se) {
		switch se.Code() & 0xff {
		case sqlite3.SQLITE_FULL, sqlite3.SQLITE_IOERR, sqlite3.SQLITE_CANTOPEN:
			return true
		case sqlite3.SQLITE_READONLY:
			return se.Code() != sqlite3.SQLITE_READONLY
		}
		return false
	}
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		return pe.Code == "53100" || pe.Code == "58030" // disk_full, io_error
	}
	return outage.IsStorage(err)
}

// ErrStorageFault is matched (errors.Is) by the errors of Open and Ping
// that a full or read-only disk under the database causes.
var ErrStorageFault = errors.New("store: the disk under the database is full or read-only")

// storageFault marks err as ErrStorageFault without changing its text.
type storageFault struct{ err error }

func (e storageFault) Error() string   { return e.err.Error() }
func (e storageFault) Unwrap() []error { return []error{e.err, ErrStorageFault} }

// writeHealth remembers that writes fail because of the disk, from the
// first such failure until a probe (Ping) writes successfully, so that
// /readyz says so and the log says it once per episode, not per request.
// Only a probe ends an episode: a transaction that commits may have
// written nothing, which proves nothing about the disk.
type writeHealth struct {
	mu    sync.Mutex
	fault error     // the first failure of the episode; nil while writes succeed
	since time.Time // when the episode began
	count int       // writes failed in the episode
}

// noteWrite records a failed write: a storage fault (isStorageFault)
// begins an episode (logged once) or adds to it; other errors, and nil,
// change nothing.
func (db *DB) noteWrite(err error) {
	if !isStorageFault(err) {
		return
	}
	db.health.mu.Lock()
	first := db.health.fault == nil
	if first {
		db.health.fault, db.health.since = err, time.Now()
	}
	db.health.count++
	db.health.mu.Unlock()
	if first {
		where := "in the data folder"
		if db.dialect == DriverPostgres {
			where = "on the PostgreSQL server"
		}
		db.logger.Error("store: the database cannot be written (disk full, read-only or failing?): requests that write answer \"try again later\" and /readyz fails until it can; free space "+where,
			"err", err)
	}
}

// writesRecovered ends the episode (a probe wrote): logged once.
func (db *DB) writesRecovered() {
	db.health.mu.Lock()
	fault, since, n := db.health.fault, db.health.since, db.health.count
	db.health.fault, db.health.count = nil, 0
	db.health.mu.Unlock()
	if fault != nil {
		db.logger.Info("store: the database can be written again", "after", time.Since(since).Round(time.Millisecond).String(), "failedWrites", n)
	}
}

// writeFault returns the storage fault that writes fail with, and since
// when, or nil while they succeed.
func (db *DB) writeFault() (error, time.Time) {
	db.health.mu.Lock()
	defer db.health.mu.Unlock()
	return db.health.fault, db.health.since
}

// probeWrite writes to the database without changing anything that it
// holds, to learn whether writes succeed again: on SQLite it sets
// user_version (which nothing uses) to its value, which rewrites the
// database header's page; on PostgreSQL it updates the newest migration's
// row to itself, which writes a new row version.
func (db *DB) probeWrite(ctx context.Context) error {
	return db.writeTx(ctx, func(t *txn) error {
		if db.dialect == DriverSQLite {
			var v int64
			if err := t.queryRow(ctx, "PRAGMA user_version").Scan(&v); err != nil {
				return err
			}
			_, err := t.exec(ctx, fmt.Sprintf("PRAGMA user_version = %d", v))
			return err
		}
		_, err := t.exec(ctx, "UPDATE schema_migrations SET checksum = checksum WHERE version = (SELECT MAX(version) FROM schema_migrations)")
		return err
	})
}
