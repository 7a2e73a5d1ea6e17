package store_test

import (
	"database/sql"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"testing"

	"github.com/thiqa/thiqa/internal/testenv"
	"github.com/thiqa/thiqa/store"
)

// CompactSQLite refuses, before VACUUM starts, a disk without room for
// VACUUM's two copies of the live data (the temporary database and the
// write-ahead log): VACUUM ran until the disk was full, the audit log's
// disk with it, and failed with SQLite's "database or disk is full". The
// database is left as it was.
func TestCompactSQLiteRefusesADiskWithoutRoom(t *testing.T) {
	ctx := t.Context()
	disk := testenv.NewSmallDisk(t, 44<<20)
	t.Setenv("SQLITE_TMPDIR", disk.Dir)
	db, err := store.Open(ctx, store.Config{Driver: store.DriverSQLite, DSN: filepath.Join(disk.Dir, store.DefaultSQLiteFile)}, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = db.Close() })
	if err := db.LeaveLivePages(ctx, 12<<10); err != nil {
		t.Fatal(err)
	}
	if err := db.LeaveFreePages(ctx, 1<<10); err != nil {
		t.Fatal(err)
	}
	before, err := db.SQLiteSpace(ctx)
	if err != nil {
		t.Fatal(err)
	}
	err = db.CompactSQLite(ctx)
	if !errors.Is(err, store.ErrNoRoomToCompact) {
		t.Fatalf("CompactSQLite on a disk without room for two copies of %d live bytes: %v", before.Bytes-before.FreeBytes, err)
	}
	t.Log(err)
	after, err := db.SQLiteSpace(ctx)
	if err != nil || after != before {
		t.Fatalf("after the refusal: %+v (before %+v) %v", after, before, err)
	}
}

// A reader of another process on the old pages (a thiqa backup, an audit
// find) keeps the write-ahead log from being truncated after VACUUM:
// SQLite's checkpoint says busy, without an error, and the compaction
// reported the space given back while the log held a copy of the whole
// database beside the old file. It is an ErrWALBusy error now.
func TestCompactSQLiteSaysWhenTheLogCannotBeTruncated(t *testing.T) {
	ctx := t.Context()
	dsn := filepath.Join(t.TempDir(), store.DefaultSQLiteFile)
	db, err := store.Open(ctx, store.Config{Driver: store.DriverSQLite, DSN: dsn}, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = db.Close() })
	if err := db.LeaveLivePages(ctx, 256); err != nil {
		t.Fatal(err)
	}
	if err := db.LeaveFreePages(ctx, 1024); err != nil {
		t.Fatal(err)
	}
	other, err := sql.Open("sqlite", "file:"+dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	tx, err := other.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback()
	var n int
	if err := tx.QueryRowContext(ctx, "SELECT count(*) FROM compact_test_live").Scan(&n); err != nil {
		t.Fatal(err)
	}
	if err := db.SetWriterBusyTimeout(ctx, 100); err != nil {
		t.Fatal(err)
	}
	if err := db.CompactSQLite(ctx); !errors.Is(err, store.ErrWALBusy) {
		t.Fatalf("CompactSQLite beside a reader of the old pages: %v", err)
	}
	_ = tx.Rollback()
	if err := db.CompactSQLite(ctx); err != nil {
		t.Fatalf("CompactSQLite once the reader is done: %v", err)
	}
	if wal, err := os.Stat(dsn + "-wal"); err == nil && wal.Size() != 0 {
		t.Fatalf("the write-ahead log keeps %d bytes", wal.Size())
	}
}
