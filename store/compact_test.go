package store_test

import (
	"errors"
	"os"
	"strings"
	"testing"

	"github.com/thiqa/thiqa/store"
	"github.com/thiqa/thiqa/store/storetest"
)

// A SQLite store's free pages (what an archive's deletes leave) are
// counted, and CompactSQLite gives them back to the disk: the file and
// its write-ahead log shrink, and the records stay. A PostgreSQL store is
// refused with ErrNotSQLite.
func TestCompactSQLite(t *testing.T) {
	ctx := t.Context()
	root := strings.Repeat("ab", 32)
	for _, d := range storetest.Dialects() {
		t.Run(d.Name, func(t *testing.T) {
			cfg := d.NewConfig(t)
			db := storetest.Open(t, cfg)
			if d.Name == store.DriverPostgres {
				if _, err := db.SQLiteSpace(ctx); !errors.Is(err, store.ErrNotSQLite) {
					t.Fatalf("SQLiteSpace on PostgreSQL: %v", err)
				}
				if err := db.CompactSQLite(ctx); !errors.Is(err, store.ErrNotSQLite) {
					t.Fatalf("CompactSQLite on PostgreSQL: %v", err)
				}
				return
			}
			if _, _, err := db.RecordDeployment(ctx, store.Deployment{RootSHA256: root}); err != nil {
				t.Fatal(err)
			}
			if err := db.LeaveFreePages(ctx, 2048); err != nil {
				t.Fatal(err)
			}
			before, err := db.SQLiteSpace(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if before.FreeBytes < 2<<20 || before.Bytes < before.FreeBytes {
				t.Fatalf("after dropping 2 MiB: %+v", before)
			}
			if err := db.CompactSQLite(ctx); err != nil {
				t.Fatal(err)
			}
			after, err := db.SQLiteSpace(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if after.FreeBytes != 0 || after.Bytes > before.Bytes-before.FreeBytes {
				t.Fatalf("compacted: %+v, before %+v", after, before)
			}
			fi, err := os.Stat(cfg.DSN)
			if err != nil {
				t.Fatal(err)
			}
			if fi.Size() > after.Bytes {
				t.Fatalf("the file holds %d bytes, the database %d", fi.Size(), after.Bytes)
			}
			if wal, err := os.Stat(cfg.DSN + "-wal"); err == nil && wal.Size() != 0 {
				t.Fatalf("the write-ahead log keeps %d bytes", wal.Size())
			}
			if dep, ok, err := db.Deployment(ctx); err != nil || !ok || dep.RootSHA256 != root {
				t.Fatalf("the records after compaction: %+v %v", dep, err)
			}
		})
	}
}
