package store

import (
	"context"
	"errors"
	"fmt"
)

// ErrNotSQLite is returned (wrapped) by the SQLite-only maintenance of a
// PostgreSQL store: its autovacuum reuses freed space, and giving it back
// to the disk (VACUUM FULL) takes an exclusive lock a DBA plans.
var ErrNotSQLite = errors.New("store: not a SQLite store")

// FileSpace is how big a SQLite database file is and how much of it is
// free pages: what records deleted (thiqa audit archive) left, which later
// writes reuse and which only a VACUUM gives back to the disk.
type FileSpace struct {
	// Bytes is the database's size (pages × page size); FreeBytes the
	// part of it on the free list.
	Bytes, FreeBytes int64
}

// SQLiteSpace returns the SQLite database's size and free space
// (PRAGMA page_count, freelist_count, page_size).
func (db *DB) SQLiteSpace(ctx context.Context) (FileSpace, error) {
	if db.dialect != DriverSQLite {
		return FileSpace{}, fmt.Errorf("%w: %s", ErrNotSQLite, db.dialect)
	}
	var pages, free, size int64
	for _, q := range []struct {
		pragma string
		into   *int64
	}{{"page_count", &pages}, {"freelist_count", &free}, {"page_size", &size}} {
		if err := db.w.QueryRowContext(ctx, "PRAGMA "+q.pragma).Scan(q.into); err != nil {
			return FileSpace{}, fmt.Errorf("store: sqlite: PRAGMA %s: %w", q.pragma, err)
		}
	}
	return FileSpace{Bytes: pages * size, FreeBytes: free * size}, nil
}

// CompactSQLite rewrites the SQLite database without its free pages
// (VACUUM) and truncates the write-ahead log, giving the space back to
// the disk. It needs the database to itself: the caller makes sure no
// server has it open (the data folder's exclusive lock). VACUUM needs
// about the database's size again of free disk space while it runs; when
// it fails the database is left as it was.
func (db *DB) CompactSQLite(ctx context.Context) error {
	if db.dialect != DriverSQLite {
		return fmt.Errorf("%w: %s", ErrNotSQLite, db.dialect)
	}
	if _, err := db.w.ExecContext(ctx, "VACUUM"); err != nil {
		return fmt.Errorf("store: sqlite: VACUUM: %w", err)
	}
	if _, err := db.w.ExecContext(ctx, "PRAGMA wal_checkpoint(TRUNCATE)"); err != nil {
		return fmt.Errorf("store: sqlite: truncating the write-ahead log: %w", err)
	}
	return nil
}
