package store

import (
	"context"
	"log/slog"
	"path/filepath"
	"strings"
	"testing"

	"github.com/thiqa/thiqa/backup"
	"github.com/thiqa/thiqa/internal/audit"
	"github.com/thiqa/thiqa/timestamp"
)

var _ backup.RestoredStore = (*Restored)(nil)

// Two deployment identities (SHA-256 in lower-case hex).
var (
	rootA = strings.Repeat("a", 64)
	rootB = strings.Repeat("b", 64)
)

// TestRestored: a restored store records the backup's deployment identity
// (keeping one it has), raises the counters to the floor and audits.
func TestRestored(t *testing.T) {
	ctx := context.Background()
	db, err := Open(ctx, Config{Driver: DriverSQLite, DSN: filepath.Join(t.TempDir(), "thiqa.db")}, nil)
	if err != nil {
		t.Fatal(err)
	}
	r := NewRestored(db, audit.New(db, slog.New(slog.DiscardHandler), nil, audit.Options{}))
	if got, err := r.RecordDeployment(ctx, rootA); err != nil || got != rootA {
		t.Fatalf("RecordDeployment: %q %v", got, err)
	}
	if got, err := r.RecordDeployment(ctx, rootB); err != nil || got != rootA {
		t.Fatalf("RecordDeployment again: %q %v", got, err)
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
	if err := r.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
}

func TestPostgresStateBackup(t *testing.T) {
	if got := (PostgresState{Tables: 3}).Backup(); got != (backup.PostgresState{Tables: 3}) {
		t.Errorf("no deployment: %+v", got)
	}
	d := &Deployment{RootSHA256: "aa"}
	if got := (PostgresState{Tables: 3, Deployment: d}).Backup(); got.RootSHA256 != "aa" || got.Tables != 3 {
		t.Errorf("with a deployment: %+v", got)
	}
}
