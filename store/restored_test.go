package store_test

import (
	"context"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/thiqa/thiqa/backup"
	"github.com/thiqa/thiqa/internal/audit"
	"github.com/thiqa/thiqa/store"
	"github.com/thiqa/thiqa/store/storetest"
	"github.com/thiqa/thiqa/timestamp"
)

var _ backup.RestoredStore = (*store.Restored)(nil)

// TestRestored on SQLite and PostgreSQL: a restored store records the
// backup's deployment identity (keeping one it has), raises the TSA serial
// counter and the CRL numbers to the floor, audits, and closes its audit
// log and itself.
func TestRestored(t *testing.T) {
	rootA, rootB := strings.Repeat("a", 64), strings.Repeat("b", 64)
	for _, d := range storetest.Dialects() {
		t.Run(d.Name, func(t *testing.T) {
			ctx := context.Background()
			logger := slog.New(slog.DiscardHandler)
			db, err := store.Open(ctx, d.NewConfig(t), logger)
			if err != nil {
				t.Fatal(err)
			}
			r := store.NewRestored(db, audit.New(db, logger, nil, audit.Options{}))
			if got, err := r.RecordDeployment(ctx, rootA); err != nil || got != rootA {
				t.Fatalf("RecordDeployment: %q %v", got, err)
			}
			if got, err := r.RecordDeployment(ctx, rootB); err != nil || got != rootA {
				t.Fatalf("RecordDeployment again: %q %v, want the first identity kept", got, err)
			}
			raised, err := r.RaiseCounters(ctx, 1000, []string{"citizen"})
			if err != nil || len(raised) != 2 {
				t.Fatalf("RaiseCounters: %+v %v", raised, err)
			}
			for _, c := range raised {
				if c.To < 1000 || (c.Name != timestamp.SerialCounter && c.Name != "citizen") {
					t.Errorf("raised %+v", c)
				}
			}
			if _, err := r.Append(ctx, audit.Entry{Actor: "test", Action: "restore.complete", Object: "x", Outcome: audit.OutcomeSuccess}); err != nil {
				t.Fatalf("Append: %v", err)
			}
			if n := storetest.AuditCount(t, db, "restore.complete", audit.OutcomeSuccess); n != 1 {
				t.Errorf("%d restore.complete records, want 1", n)
			}
			if err := r.Close(); err != nil {
				t.Fatalf("Close: %v", err)
			}
		})
	}
}

// TestPostgresStateBackup: a database's state as a restore judges it
// carries the table count and, when there is one, the deployment identity
// and when it was recorded.
func TestPostgresStateBackup(t *testing.T) {
	if got := (store.PostgresState{Tables: 3}).Backup(); got != (backup.PostgresState{Tables: 3}) {
		t.Errorf("no deployment: %+v", got)
	}
	d := &store.Deployment{RootSHA256: "aa", CreatedAt: time.Unix(1_800_000_000, 0).UTC()}
	if got := (store.PostgresState{Tables: 3, Deployment: d}).Backup(); got.RootSHA256 != "aa" || got.Tables != 3 || !got.RecordedAt.Equal(d.CreatedAt) {
		t.Errorf("with a deployment: %+v", got)
	}
}
