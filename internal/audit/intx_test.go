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
