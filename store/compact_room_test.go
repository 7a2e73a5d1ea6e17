package store_test

import (
	"errors"
	"log/slog"
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
