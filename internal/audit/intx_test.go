package audit_test

import (
	"errors"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/thiqa/thiqa/internal/audit"
)

// TestPrepare: a prepared entry is validated as Append validates it, sealed
// at whatever head it is given (again on a retry), and counted in
// thiqa_audit_records_total only once the store says it was committed.
func TestPrepare(t *testing.T) {
	reg := prometheus.NewRegistry()
	l := newLog(t, audit.NewFileStore(t.TempDir()+"/audit.jsonl"), reg)
	if _, err := l.Prepare(audit.Entry{Action: "x", Outcome: audit.OutcomeSuccess}); !errors.Is(err, audit.ErrInvalidEntry) {
		t.Fatalf("an entry without actor: %v", err)
	}
	seal, err := l.Prepare(audit.Entry{Actor: "a", Action: "certificate.revoke", Object: "0a", Outcome: audit.OutcomeSuccess},
		audit.Entry{Actor: "a", Action: "key.block", Object: "ff", Outcome: audit.OutcomeSuccess})
	if err != nil {
		t.Fatal(err)
	}
	for _, h := range []audit.Head{{Hash: audit.GenesisHash()}, {Seq: 7, Hash: make([]byte, audit.HashSize)}} {
		recs, err := seal.Seal(h)
		if err != nil || len(recs) != 2 || recs[0].Seq != h.Seq+1 || recs[1].Seq != h.Seq+2 ||
			string(recs[1].PrevHash) != string(recs[0].Hash) || string(recs[1].Hash) != string(audit.HashRecord(recs[1])) {
			t.Fatalf("sealed at %d: %+v %v", h.Seq, recs, err)
		}
	}
	if got := testutil.ToFloat64(mustCounter(t, reg, "success")); got != 0 {
		t.Fatalf("%v records counted before the commit", got)
	}
	seal.Committed()
	if got := testutil.ToFloat64(mustCounter(t, reg, "success")); got != 2 {
		t.Fatalf("%v records counted after the commit, want 2", got)
	}
}

// TestPreparedFailed: a prepared change whose records the store could not
// write counts as one failed append, as a failed Append does.
func TestPreparedFailed(t *testing.T) {
	reg := prometheus.NewRegistry()
	l := newLog(t, audit.NewFileStore(t.TempDir()+"/audit.jsonl"), reg)
	seal, err := l.Prepare(audit.Entry{Actor: "a", Action: "certificate.revoke", Object: "0a", Outcome: audit.OutcomeSuccess})
	if err != nil {
		t.Fatal(err)
	}
	f, ok := seal.(audit.FailureNoter)
	if !ok {
		t.Fatal("Prepare's Sealer does not take failures")
	}
	f.Failed(errors.New("test: refused"))
	if got := testutil.ToFloat64(mustCounterNamed(t, reg, "thiqa_audit_append_failures_total")); got != 1 {
		t.Fatalf("thiqa_audit_append_failures_total = %v, want 1", got)
	}
}
