// Package storetest opens real, fresh stores for tests, one per dialect, so
// that every store-backed test runs the same way against SQLite and
// PostgreSQL:
//
//	for _, d := range storetest.Dialects() {
//		t.Run(d.Name, func(t *testing.T) {
//			db := storetest.Open(t, d.NewConfig(t))
//			…
//		})
//	}
//
// PostgreSQL comes from the throwaway cluster scripts/testenv.sh starts
// (testenv.PostgresDSN); without it the test fails, it is never skipped.
package storetest

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"path/filepath"
	"testing"
	"time"

	"github.com/thiqa/thiqa/internal/audit"
	"github.com/thiqa/thiqa/internal/testenv"
	"github.com/thiqa/thiqa/store"
)

// Dialect opens fresh databases of one kind.
type Dialect struct {
	// Name is the driver name, "sqlite" or "postgres" (used as subtest name).
	Name string
	// NewConfig creates a fresh, empty database for the test and returns
	// the configuration naming it. Opening the same Config twice (two
	// *store.DB, or another process) shares the database.
	NewConfig func(t testing.TB) store.Config
}

// Dialects returns SQLite and PostgreSQL.
func Dialects() []Dialect {
	return []Dialect{
		{Name: store.DriverSQLite, NewConfig: func(t testing.TB) store.Config {
			return store.Config{Driver: store.DriverSQLite, DSN: filepath.Join(t.TempDir(), store.DefaultSQLiteFile)}
		}},
		{Name: store.DriverPostgres, NewConfig: func(t testing.TB) store.Config {
			return store.Config{Driver: store.DriverPostgres, DSN: testenv.PostgresDSN(t)}
		}},
	}
}

// Open opens (and migrates) the store cfg names and closes it when the test
// ends.
func Open(t testing.TB, cfg store.Config) *store.DB {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	db, err := store.Open(ctx, cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatalf("storetest: opening %s store: %v", cfg.Driver, err)
	}
	t.Cleanup(func() { _ = db.Close() })
	return db
}

// AuditCount counts the audit records of action with outcome in db.
func AuditCount(t testing.TB, db *store.DB, action, outcome string) int {
	t.Helper()
	n := 0
	err := db.AuditRecords(context.Background(), 1, func(r audit.Record) error {
		if r.Action == action && r.Outcome == outcome {
			n++
		}
		return nil
	})
	if err != nil {
		t.Fatalf("storetest: reading the audit log: %v", err)
	}
	return n
}

// ItemRefusalsAccounted is RefusalsAccounted for a service that records
// its refusals as items of collective records (audit.Group: the TSA's
// timestamp.refuse): it counts the refusals that the items of action's
// records account for after the first skip items, each item plus the
// refusals it says an overall budget left unrecorded (unrecordedOverall).
func ItemRefusalsAccounted(t testing.TB, db *store.DB, action string, skip int) int {
	t.Helper()
	n := 0
	err := db.AuditRecords(context.Background(), 1, func(r audit.Record) error {
		if r.Action != action {
			return nil
		}
		var d struct {
			Items []struct {
				Unrecorded int `json:"unrecordedOverall"`
			} `json:"items"`
		}
		if err := json.Unmarshal(r.Details, &d); err != nil {
			return fmt.Errorf("record %d: %w", r.Seq, err)
		}
		for _, it := range d.Items {
			if skip > 0 {
				skip--
				continue
			}
			n += 1 + it.Unrecorded
		}
		return nil
	})
	if err != nil {
		t.Fatalf("storetest: reading the audit log: %v", err)
	}
	return n
}

// RefusalsAccounted counts the refusals of action that db's audit log
// accounts for after its first skip refused records: each record, plus the
// refusals it says an overall budget left unrecorded (unrecordedOverall).
func RefusalsAccounted(t testing.TB, db *store.DB, action string, skip int) int {
	t.Helper()
	n := 0
	err := db.AuditRecords(context.Background(), 1, func(r audit.Record) error {
		if r.Action != action || r.Outcome != "refused" {
			return nil
		}
		if skip > 0 {
			skip--
			return nil
		}
		var d struct {
			Unrecorded int `json:"unrecordedOverall"`
		}
		if err := json.Unmarshal(r.Details, &d); err != nil {
			return fmt.Errorf("record %d: %w", r.Seq, err)
		}
		n += 1 + d.Unrecorded
		return nil
	})
	if err != nil {
		t.Fatalf("storetest: reading the audit log: %v", err)
	}
	return n
}
