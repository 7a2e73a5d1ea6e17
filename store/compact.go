package store

import (
	"context"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/thiqa/thiqa/internal/diskspace"
)

// walTruncateRetry bounds how long CompactSQLite asks again for a
// checkpoint that could not start because another checkpoint was running.
const walTruncateRetry = 2 * time.Second

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

// ErrNoRoomToCompact is returned (wrapped) by CompactRoom and
// CompactSQLite when a disk VACUUM writes to has too little free space:
// nothing was changed.
var ErrNoRoomToCompact = errors.New("store: not enough free disk to compact the SQLite database")

// compactSlack is the free space CompactRoom leaves beyond VACUUM's
// copies, so that the disk under the database is not left full by them.
const compactSlack = 4 << 20

// CompactRoom checks that the disks VACUUM writes to have room for it:
// in WAL mode it builds a copy of the live pages (space.Bytes -
// space.FreeBytes) in SQLite's temporary folder (sqliteTempDir) and
// writes them again to the write-ahead log beside the database, both
// while the old file keeps its size; on one file system both copies
// come out of one free space. A VACUUM that runs out of room fails and
// changes nothing, but leaves that disk full meanwhile, the audit log's
// and the token's included. Disks whose free space cannot be told pass.
func (db *DB) CompactRoom(space FileSpace) error {
	if db.dialect != DriverSQLite {
		return fmt.Errorf("%w: %s", ErrNotSQLite, db.dialect)
	}
	live := space.Bytes - space.FreeBytes
	tmp := sqliteTempDir()
	needDB, needTmp := live+compactSlack, live+compactSlack
	if same, _ := diskspace.SameFileSystem(db.sqliteDir, tmp); same {
		needDB, needTmp = 2*live+compactSlack, 0
	}
	if free, ok := diskspace.Free(db.sqliteDir); ok && free < needDB {
		return fmt.Errorf("%w: VACUUM writes the %d bytes of live data to the write-ahead log beside the database (and to the temporary folder %s, on the same disk): the database's folder %s has %d bytes free, at least %d needed: free space there",
			ErrNoRoomToCompact, live, tmp, db.sqliteDir, free, needDB)
	}
	if free, ok := diskspace.Free(tmp); ok && needTmp > 0 && free < needTmp {
		return fmt.Errorf("%w: VACUUM builds a copy of the %d bytes of live data in SQLite's temporary folder %s, which has %d bytes free, at least %d needed: free space there, or point SQLITE_TMPDIR to a folder with room",
			ErrNoRoomToCompact, live, tmp, free, needTmp)
	}
	return nil
}

// sqliteTempDir is the folder SQLite's unix VFS puts its temporary files
// in (VACUUM's copy among them): SQLITE_TMPDIR, else TMPDIR, else the
// first of /var/tmp, /usr/tmp and /tmp that exists, else the current one.
func sqliteTempDir() string {
	for _, d := range []string{os.Getenv("SQLITE_TMPDIR"), os.Getenv("TMPDIR"), "/var/tmp", "/usr/tmp", "/tmp"} {
		if d == "" {
			continue
		}
		if fi, err := os.Stat(d); err == nil && fi.IsDir() {
			return d
		}
	}
	return "."
}

// CompactSQLite rewrites the SQLite database without its free pages
// (VACUUM) and truncates the write-ahead log, giving the space back to
// the disk. It needs the database to itself: the caller makes sure no
// server has it open (the data folder's exclusive lock). It first checks
// the disks have room for VACUUM's copies (CompactRoom); when VACUUM
// fails the database is left as it was.
func (db *DB) CompactSQLite(ctx context.Context) error {
	space, err := db.SQLiteSpace(ctx)
	if err != nil {
		return err
	}
	if err := db.CompactRoom(space); err != nil {
		return err
	}
	if _, err := db.w.ExecContext(ctx, "VACUUM"); err != nil {
		return fmt.Errorf("store: sqlite: VACUUM: %w", err)
	}
	// The pragma answers a checkpoint it could not finish (a reader of
	// another process still on the old pages after busy_timeout) with
	// busy 1, not an error: the log then keeps its copy of the whole
	// database beside the old file, more disk than before.
	// -1 frames is a checkpoint that could not start: the store's own
	// checkpointer (checkpoint.go) held the checkpoint lock for a moment;
	// it is asked again, for up to walTruncateRetry.
	var busy, logFrames, done int64
	for deadline := time.Now().Add(walTruncateRetry); ; {
		if err := db.w.QueryRowContext(ctx, "PRAGMA wal_checkpoint(TRUNCATE)").Scan(&busy, &logFrames, &done); err != nil {
			return fmt.Errorf("store: sqlite: truncating the write-ahead log: %w", err)
		}
		if busy == 0 || logFrames != -1 || time.Now().After(deadline) {
			break
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("store: sqlite: truncating the write-ahead log: %w", ctx.Err())
		case <-time.After(20 * time.Millisecond):
		}
	}
	if busy != 0 {
		return fmt.Errorf("%w: the database was rebuilt, but another process kept reading the old pages, so the write-ahead log keeps %d pages (%d copied back) and the file its size: run the compaction again once it is done (thiqa backup, audit find, ...)",
			ErrWALBusy, logFrames, done)
	}
	return nil
}

// ErrWALBusy is returned (wrapped) by CompactSQLite when the write-ahead
// log could not be truncated after VACUUM because another process was
// reading: the records are safe, the disk is not given back yet.
var ErrWALBusy = errors.New("store: sqlite: the write-ahead log could not be truncated")
