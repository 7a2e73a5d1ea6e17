package store_test

import (
	"context"
	"database/sql"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/thiqa/thiqa/store"
	"github.com/thiqa/thiqa/store/storetest"
)

// migrationLockKey is store's migration lock ("thiqa-mi"), which releases
// before concurrent index builds take in every migration's transaction.
const migrationLockKey = 0x74686971612d6d69

// olderReleaseMigrates does what the migrate of a release before
// concurrent index builds does for 0030 on raw: in one transaction, under
// the migration lock, skip it when recorded, else build the index plainly
// and record it.
func olderReleaseMigrates(ctx context.Context, raw *sql.DB) error {
	tx, err := raw.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer func() { _ = tx.Rollback() }()
	if _, err := tx.ExecContext(ctx, "SELECT pg_advisory_xact_lock($1)", int64(migrationLockKey)); err != nil {
		return err
	}
	var sum string
	err = tx.QueryRowContext(ctx, "SELECT checksum FROM schema_migrations WHERE version = '0030_audit_action'").Scan(&sum)
	switch {
	case err == nil:
		return tx.Commit()
	case !errors.Is(err, sql.ErrNoRows):
		return err
	}
	if _, err := tx.ExecContext(ctx, "CREATE INDEX audit_log_action ON audit_log (action, seq)"); err != nil {
		return err
	}
	if _, err := tx.ExecContext(ctx, "INSERT INTO schema_migrations (version, checksum) VALUES ('0030_audit_action', 'x')"); err != nil {
		return err
	}
	return tx.Commit()
}

// TestIndexMigrationOlderReleaseMeanwhile: a node of the release before
// (plain build in the migration's transaction) starts while this release
// builds 0030's index concurrently, as in an upgrade node by node. Both
// start: the older one finds 0030 recorded and skips it. Were it not
// recorded yet, the older node's build would wait for the concurrent
// build's lock with a snapshot the concurrent build waits for: a deadlock
// PostgreSQL ends by failing the concurrent build, and the older node then
// finds the index name taken, so both fail.
func TestIndexMigrationOlderReleaseMeanwhile(t *testing.T) {
	cfg, _, raw := before0030(t)
	release := holdBuild(t, raw)
	var logs logBuffer
	opened := openAsync(t, cfg, &logs)
	waitBuildWaiting(t, raw, opened)
	older := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		older <- olderReleaseMigrates(ctx, raw)
	}()
	// Let the older node reach its build (and wait there, were 0030 not
	// recorded) before the concurrent build goes on.
	time.Sleep(300 * time.Millisecond)
	release()
	if err := <-opened; err != nil {
		t.Errorf("this release's Open: %v", err)
	}
	if err := <-older; err != nil {
		t.Errorf("the older release's migration: %v", err)
	}
	checkIndexValid(t, raw)
}

// TestIndexMigrationBuildsRecordedInvalidIndex: 0030 is recorded when its
// build starts; a build stopped then (a crash) leaves it recorded with an
// INVALID or no index: the next Open builds it again.
func TestIndexMigrationBuildsRecordedInvalidIndex(t *testing.T) {
	for _, tc := range []struct{ name, q string }{
		{"invalid", "UPDATE pg_index SET indisvalid = false WHERE indexrelid = 'audit_log_action'::regclass"},
		{"missing", "DROP INDEX audit_log_action"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := ctxT(t)
			cfg := postgresDialect(t).NewConfig(t)
			db := storetest.Open(t, cfg)
			if err := db.ExecTx(ctx, tc.q); err != nil {
				t.Fatal(err)
			}
			var logs logBuffer
			db2, err := store.Open(ctx, cfg, logs.logger())
			if err != nil {
				t.Fatalf("Open: %v", err)
			}
			defer db2.Close()
			raw, err := sql.Open("pgx", cfg.DSN)
			if err != nil {
				t.Fatal(err)
			}
			defer raw.Close()
			checkIndexValid(t, raw)
			if !strings.Contains(logs.String(), `msg="store: index built" version=0030_audit_action`) {
				t.Errorf("no build logged:\n%s", logs.String())
			}
			// Built: the next Open does nothing.
			var logs3 logBuffer
			db3, err := store.Open(ctx, cfg, logs3.logger())
			if err != nil {
				t.Fatal(err)
			}
			defer db3.Close()
			if strings.Contains(logs3.String(), "index") {
				t.Errorf("an Open after the build logged:\n%s", logs3.String())
			}
		})
	}
}

// TestIndexMigrationNameOnAnotherTable: an index named as 0030's but on
// another table (made by hand) is neither taken for 0030's index nor
// dropped: Open fails and says which table holds it.
func TestIndexMigrationNameOnAnotherTable(t *testing.T) {
	for _, valid := range []bool{true, false} {
		ctx := ctxT(t)
		cfg, db, raw := before0030(t)
		if err := db.ExecTx(ctx, "CREATE INDEX audit_log_action ON certificates (serial)"); err != nil {
			t.Fatal(err)
		}
		if !valid {
			if err := db.ExecTx(ctx, "UPDATE pg_index SET indisvalid = false WHERE indexrelid = 'audit_log_action'::regclass"); err != nil {
				t.Fatal(err)
			}
		}
		var logs logBuffer
		db2, err := store.Open(ctx, cfg, logs.logger())
		if err == nil {
			db2.Close()
			t.Fatalf("valid %v: Open took certificates' audit_log_action for 0030's index", valid)
		}
		if !strings.Contains(err.Error(), "exists on table certificates") {
			t.Errorf("valid %v: Open: %v", valid, err)
		}
		var table string
		if err := raw.QueryRow("SELECT indrelid::regclass::text FROM pg_index WHERE indexrelid = 'audit_log_action'::regclass").Scan(&table); err != nil || table != "certificates" {
			t.Errorf("valid %v: the hand-made index: %q, %v", valid, table, err)
		}
	}
}
