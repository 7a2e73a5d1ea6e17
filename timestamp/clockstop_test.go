package timestamp_test

import (
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/thiqa/thiqa/internal/audit"
	"github.com/thiqa/thiqa/store/storetest"
	"github.com/thiqa/thiqa/timestamp"
	"github.com/thiqa/thiqa/timestamp/tsp"
)

// TestTSAClockReturnRecordedAtStop on SQLite and PostgreSQL: the clock's
// return is recorded once it held in sync for a minute; a service that
// stops inside that minute, after granting time-stamps in sync, left the
// loss as the log's last word on the clock. Close records the return
// (settled: false, inSyncSince); a second Close records nothing more.
func TestTSAClockReturnRecordedAtStop(t *testing.T) {
	for _, d := range storetest.Dialects() {
		t.Run(d.Name, func(t *testing.T) {
			f := newFixture(t, d)
			if _, err := f.units.Init(t.Context(), "thiqa-init"); err != nil {
				t.Fatal(err)
			}
			clk := timestamp.NewStaticChecker(true)
			in := f.serve(t, clk, 30*24*time.Hour)
			data := filepath.Join(f.work, "d")
			writeFile(t, data, "x")
			stamp := func(want tsp.PKIStatus) { t.Helper(); stampWant(t, f, in, data, want) }
			clockRecords := func() []audit.Record { t.Helper(); return clockRecords(t, in) }
			stamp(tsp.StatusGranted)
			clk.Set(false)
			stamp(tsp.StatusRejection)
			clk.Set(true)
			stamp(tsp.StatusGranted) // in sync, its return not yet recorded
			if n := len(clockRecords()); n != 2 {
				t.Fatalf("%d clock records before the stop, want 2 (first check, loss)", n)
			}
			in.svc.Close()
			in.svc.Close()
			recs := clockRecords()
			if len(recs) != 3 || recs[2].Outcome != audit.OutcomeSuccess ||
				!strings.Contains(string(recs[2].Details), `"settled":false`) || !strings.Contains(string(recs[2].Details), `"inSyncSince"`) {
				t.Fatalf("clock records after the stop: %+v, want the return (settled: false)", recs)
			}
		})
	}
}

// TestTSAClockLossUnreturnedAtStart on SQLite and PostgreSQL: a process
// that ends inside the settle minute without Close (a crash) leaves the
// loss as the log's last clock record. The next start's first record says
// so (previousLossUnreturned, the loss's seq); it said only first: true,
// as if the log had nothing open. A start after a clean record of the
// return says nothing of the kind.
func TestTSAClockLossUnreturnedAtStart(t *testing.T) {
	for _, d := range storetest.Dialects() {
		t.Run(d.Name, func(t *testing.T) {
			f := newFixture(t, d)
			if _, err := f.units.Init(t.Context(), "thiqa-init"); err != nil {
				t.Fatal(err)
			}
			data := filepath.Join(f.work, "d")
			writeFile(t, data, "x")
			clk := timestamp.NewStaticChecker(true)
			crashed := f.serve(t, clk, 30*24*time.Hour)
			stampWant(t, f, crashed, data, tsp.StatusGranted)
			clk.Set(false)
			stampWant(t, f, crashed, data, tsp.StatusRejection)
			// The process ends here, its loss the last clock record.
			next := f.serve(t, timestamp.NewStaticChecker(true), 30*24*time.Hour)
			stampWant(t, f, next, data, tsp.StatusGranted)
			recs := clockRecords(t, next)
			if len(recs) != 3 || recs[1].Outcome != audit.OutcomeFailure || recs[2].Outcome != audit.OutcomeSuccess {
				t.Fatalf("clock records: %+v, want first check, loss, the next start's first check", recs)
			}
			det := string(recs[2].Details)
			if !strings.Contains(det, `"first":true`) || !strings.Contains(det, `"previousLossUnreturned":true`) ||
				!strings.Contains(det, fmt.Sprintf(`"previousLossSeq":%d`, recs[1].Seq)) {
				t.Fatalf("the next start's first record: %s", det)
			}
			// After it, a start finds the clock's last record a success.
			again := f.serve(t, timestamp.NewStaticChecker(true), 30*24*time.Hour)
			stampWant(t, f, again, data, tsp.StatusGranted)
			recs = clockRecords(t, again)
			if len(recs) != 4 || strings.Contains(string(recs[3].Details), "previousLoss") {
				t.Fatalf("a start after a recorded return: %+v", recs)
			}
		})
	}
}
