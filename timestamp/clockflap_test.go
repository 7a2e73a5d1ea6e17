package timestamp

import (
	"context"
	"log/slog"
	"testing"
	"time"

	"github.com/thiqa/thiqa/internal/audit"
)

// entries is an AuditLog that keeps what it is given.
type entries struct {
	Grouper
	got []audit.Entry
}

func (e *entries) Append(_ context.Context, en audit.Entry) (audit.Record, error) {
	e.got = append(e.got, en)
	return audit.Record{Seq: int64(len(e.got))}, nil
}

// scripted answers the checks with the status set last.
type scripted struct{ st ClockStatus }

func (s *scripted) Check(context.Context) (ClockStatus, error) { return s.st, nil }

// TestClockFlapsAreNotRecordedOneByOne: a clock at the edge of the
// declared accuracy, in and out of sync at every check (a second apart),
// left two timestamp.clock records a second for as long as it flapped.
// Its loss is recorded at once, its return once it held for clockSettle,
// with the losses in between counted; many checks of one state record
// nothing more.
func TestClockFlapsAreNotRecordedOneByOne(t *testing.T) {
	log := &entries{}
	in := &scripted{}
	c := newAuditedClock(in, log, slog.New(slog.DiscardHandler))
	t0 := time.Date(2026, 12, 5, 12, 0, 0, 0, time.UTC)
	check := func(at time.Duration, inSync bool) {
		t.Helper()
		in.st = ClockStatus{InSync: inSync, CheckedAt: t0.Add(at)}
		if !inSync {
			in.st.Reason = "offset beyond the declared accuracy"
		}
		for range 3 { // many requests see each answer
			if st, _ := c.Check(context.Background()); st.InSync != inSync {
				t.Fatalf("answer changed: %+v", st)
			}
		}
	}
	outcomes := func() []string {
		var out []string
		for _, e := range log.got {
			out = append(out, e.Outcome)
		}
		return out
	}
	check(0, true)
	check(time.Second, false)
	for i := 2; i < 600; i += 2 { // ten minutes of flapping
		check(time.Duration(i)*time.Second, true)
		check(time.Duration(i+1)*time.Second, false)
	}
	if got := outcomes(); len(got) != 2 || got[0] != audit.OutcomeSuccess || got[1] != audit.OutcomeFailure {
		t.Fatalf("records while flapping: %v, want the first check and the loss", got)
	}
	for s := 600; s <= 600+int(clockSettle/time.Second); s++ {
		check(time.Duration(s)*time.Second, true)
	}
	got := outcomes()
	if len(got) != 3 || got[2] != audit.OutcomeSuccess {
		t.Fatalf("records after the clock held: %v, want its return", got)
	}
	d, _ := log.got[2].Details.(map[string]any)
	if d["lossesUnrecorded"] != 299 || d["inSyncSince"] != t0.Add(600*time.Second).Format(time.RFC3339Nano) {
		t.Fatalf("return record details: %v", d)
	}
}
