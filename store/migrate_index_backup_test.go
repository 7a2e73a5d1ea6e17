package store_test

import (
	"bytes"
	"database/sql"
	"path/filepath"
	"strings"
	"testing"

	"github.com/thiqa/thiqa/store"
	"github.com/thiqa/thiqa/store/storetest"
)

// TestIndexMigrationClaimInBackup: a backup taken while 0030's index was
// being built holds its claim (applied_at '-infinity') and the index as it
// stood (invalid, or not yet made). Loaded into an empty database with
// RestorePostgres, as thiqa restore does, the claim survives the dump, and
// the first Open takes it up: the index is valid and the migration done.
func TestIndexMigrationClaimInBackup(t *testing.T) {
	for _, tc := range []struct{ name, q string }{
		{"invalid", "UPDATE pg_index SET indisvalid = false WHERE indexrelid = 'audit_log_action'::regclass"},
		{"missing", "DROP INDEX audit_log_action"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := ctxT(t)
			d := postgresDialect(t)
			src := d.NewConfig(t)
			db := storetest.Open(t, src)
			appendN(t, db, 3)
			for _, q := range []string{tc.q, "UPDATE schema_migrations SET applied_at = '-infinity' WHERE version = '0030_audit_action'"} {
				if err := db.ExecTx(ctx, q); err != nil {
					t.Fatal(err)
				}
			}
			dst, raw := restoredCopy(t, d, src)
			var claimed bool
			if err := raw.QueryRow("SELECT applied_at = '-infinity' FROM schema_migrations WHERE version = '0030_audit_action'").Scan(&claimed); err != nil || !claimed {
				t.Fatalf("the restored 0030 claim: %v, %v", claimed, err)
			}
			var logs logBuffer
			db2, err := store.Open(ctx, dst, logs.logger())
			if err != nil {
				t.Fatalf("Open of the restored database: %v", err)
			}
			defer db2.Close()
			checkIndexValid(t, raw)
			if !strings.Contains(logs.String(), "taking up an index build") {
				t.Errorf("the restored claim was not taken up:\n%s", logs.String())
			}
			if err := raw.QueryRow("SELECT applied_at = '-infinity' FROM schema_migrations WHERE version = '0030_audit_action'").Scan(&claimed); err != nil || claimed {
				t.Errorf("0030 still claimed after the Open: %v, %v", claimed, err)
			}
		})
	}
}

// TestBackupBefore0031: a backup of a database of the release before
// migration 0031 (no index on audit_log (at_unix_ns, seq), 0031 not
// recorded), restored into an empty database as thiqa restore does and
// opened: the first Open builds the index (valid, on the restored
// records) and records 0031.
func TestBackupBefore0031(t *testing.T) {
	ctx := ctxT(t)
	d := postgresDialect(t)
	src := d.NewConfig(t)
	db := storetest.Open(t, src)
	appendN(t, db, 3)
	for _, q := range []string{"DROP INDEX audit_log_at", "DELETE FROM schema_migrations WHERE version = '0031_audit_at'"} {
		if err := db.ExecTx(ctx, q); err != nil {
			t.Fatal(err)
		}
	}
	dst, raw := restoredCopy(t, d, src)
	var n int
	if err := raw.QueryRow("SELECT count(*) FROM pg_indexes WHERE indexname = 'audit_log_at'").Scan(&n); err != nil || n != 0 {
		t.Fatalf("the restored database has %d indexes audit_log_at (%v), want none", n, err)
	}
	db2, err := store.Open(ctx, dst, nil)
	if err != nil {
		t.Fatalf("Open of the restored database: %v", err)
	}
	defer db2.Close()
	var valid bool
	if err := raw.QueryRow("SELECT indisvalid FROM pg_index WHERE indexrelid = 'audit_log_at'::regclass").Scan(&valid); err != nil || !valid {
		t.Fatalf("audit_log_at valid: %v, %v", valid, err)
	}
	if err := raw.QueryRow("SELECT count(*) FROM schema_migrations WHERE version = '0031_audit_at' AND applied_at > '-infinity'").Scan(&n); err != nil || n != 1 {
		t.Fatalf("0031 recorded %d times, %v", n, err)
	}
}

// TestBackupBefore0031SQLite: the same for SQLite: a backup
// (BackupSQLite, as thiqa backup takes it) of a database without 0031,
// opened as a restored data folder's is, gets the index built and 0031
// recorded.
func TestBackupBefore0031SQLite(t *testing.T) {
	ctx := ctxT(t)
	var d storetest.Dialect
	for _, x := range storetest.Dialects() {
		if x.Name == store.DriverSQLite {
			d = x
		}
	}
	db := storetest.Open(t, d.NewConfig(t))
	appendN(t, db, 3)
	for _, q := range []string{"DROP INDEX audit_log_at", "DELETE FROM schema_migrations WHERE version = '0031_audit_at'"} {
		if err := db.ExecTx(ctx, q); err != nil {
			t.Fatal(err)
		}
	}
	dst := filepath.Join(t.TempDir(), "restored.db")
	if err := db.BackupSQLite(ctx, dst); err != nil {
		t.Fatal(err)
	}
	count := func(q string) int64 {
		raw, err := sql.Open("sqlite", dst)
		if err != nil {
			t.Fatal(err)
		}
		defer raw.Close()
		var n int64
		if err := raw.QueryRow(q).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	const index = "SELECT count(*) FROM sqlite_master WHERE type = 'index' AND name = 'audit_log_at'"
	if n := count(index); n != 0 {
		t.Fatalf("the backup has %d indexes audit_log_at, want none", n)
	}
	db2, err := store.Open(ctx, store.Config{Driver: store.DriverSQLite, DSN: dst}, nil)
	if err != nil {
		t.Fatalf("Open of the restored database: %v", err)
	}
	db2.Close()
	if n := count(index); n != 1 {
		t.Errorf("after Open: %d indexes audit_log_at, want 1", n)
	}
	if n := count("SELECT count(*) FROM schema_migrations WHERE version = '0031_audit_at'"); n != 1 {
		t.Errorf("0031 recorded %d times, want once", n)
	}
}

// restoredCopy dumps the PostgreSQL database of src and loads the dump
// into a new empty database of d, as thiqa backup and thiqa restore do. It
// returns the copy's configuration and a plain connection to it, closed
// with the test.
func restoredCopy(t *testing.T, d storetest.Dialect, src store.Config) (store.Config, *sql.DB) {
	t.Helper()
	ctx := ctxT(t)
	var dump bytes.Buffer
	if err := store.DumpPostgres(ctx, src.DSN, &dump); err != nil {
		t.Fatal(err)
	}
	dst := d.NewConfig(t)
	if err := store.RestorePostgres(ctx, dst.DSN, &dump); err != nil {
		t.Fatal(err)
	}
	raw, err := sql.Open("pgx", dst.DSN)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { raw.Close() })
	return dst, raw
}
