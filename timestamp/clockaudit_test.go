package timestamp_test

import (
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/thiqa/thiqa/internal/audit"
	"github.com/thiqa/thiqa/store/storetest"
	"github.com/thiqa/thiqa/timestamp"
	"github.com/thiqa/thiqa/timestamp/tsp"
)

// TestTSAClockChangesAreRecorded on SQLite and PostgreSQL: the service
// records the clock's state at its first check and each change after
// (timestamp.clock: failure when synchronisation is lost, with the reason,
// success when it is back), before the request that saw the change is
// answered; checks that change nothing record nothing. A return is
// recorded once the clock held in sync for the settle period.
func TestTSAClockChangesAreRecorded(t *testing.T) {
	for _, d := range storetest.Dialects() {
		t.Run(d.Name, func(t *testing.T) {
			f := newFixture(t, d)
			if _, err := f.units.Init(t.Context(), "thiqa-init"); err != nil {
				t.Fatal(err)
			}
			clk := timestamp.NewStaticChecker(true)
			in := f.serve(t, clk, 30*24*time.Hour)
			timestamp.SetClockSettle(in.svc, 50*time.Millisecond)
			data := filepath.Join(f.work, "d")
			writeFile(t, data, "x")
			stamp := func(want tsp.PKIStatus) { t.Helper(); stampWant(t, f, in, data, want) }
			clockRecords := func() []audit.Record { t.Helper(); return clockRecords(t, in) }
			stamp(tsp.StatusGranted)
			stamp(tsp.StatusGranted)
			clk.Set(false)
			stamp(tsp.StatusRejection)
			stamp(tsp.StatusRejection)
			clk.Set(true)
			stamp(tsp.StatusGranted)
			if n := len(clockRecords()); n != 2 {
				t.Fatalf("%d clock records, want 2: the return is recorded once it held", n)
			}
			time.Sleep(60 * time.Millisecond) // past the settle period set below
			stamp(tsp.StatusGranted)
			recs := clockRecords()
			want := []string{audit.OutcomeSuccess, audit.OutcomeFailure, audit.OutcomeSuccess}
			if len(recs) != len(want) {
				t.Fatalf("%d clock records, want %d: %+v", len(recs), len(want), recs)
			}
			for i, r := range recs {
				if r.Outcome != want[i] || r.Actor != timestamp.AuditActor {
					t.Fatalf("record %d: %s by %s, want %s by %s", i, r.Outcome, r.Actor, want[i], timestamp.AuditActor)
				}
			}
			if !strings.Contains(string(recs[0].Details), `"first":true`) ||
				!strings.Contains(string(recs[1].Details), `"reason":"clock declared out of sync"`) {
				t.Fatalf("details: %s / %s", recs[0].Details, recs[1].Details)
			}
		})
	}
}

// stampWant asks in for a time-stamp over the file data and fails the test
// unless the answer's status is want.
func stampWant(t *testing.T, f *fixture, in *instance, data string, want tsp.PKIStatus) {
	t.Helper()
	if _, resp := f.stamp(t, in, f.query(t, data, "-sha256", "-cert")); resp.Status.Status != want {
		t.Fatalf("status %s, want %v", resp.Status, want)
	}
}

// clockRecords returns in's timestamp.clock audit records, oldest first.
func clockRecords(t *testing.T, in *instance) []audit.Record {
	t.Helper()
	var out []audit.Record
	if err := in.db.AuditRecords(context.Background(), 1, func(r audit.Record) error {
		if r.Action == timestamp.ActionClock {
			out = append(out, r)
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return out
}
