package store_test

import (
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/thiqa/thiqa/enrol"
	"github.com/thiqa/thiqa/internal/audit"
	"github.com/thiqa/thiqa/store"
	"github.com/thiqa/thiqa/store/storetest"
)

// toldSealer counts what the store told a Sealer after its transaction.
type toldSealer struct {
	audit.Sealer
	committed, failed atomic.Int32
}

func (s *toldSealer) Committed() { s.committed.Add(1); s.Sealer.Committed() }

func (s *toldSealer) Failed(err error) {
	s.failed.Add(1)
	if f, ok := s.Sealer.(audit.FailureNoter); ok {
		f.Failed(err)
	}
}

// TestFailFollowUpCommitLost on PostgreSQL (SQLite commits in the
// process): when the connection drops while the server commits a CMP
// follow-up recorded as failed, FailFollowUp looks whether it took
// effect, by its record in the audit log. Taken: it answers nil, the state
// is failed with one record, and the sealer is told they were committed,
// so that the caller counts it (thiqa_cmp_followup_failed_total, the
// alert) and tells the client, which it would not when it got the error
// for a transaction no sweep takes again. Not taken: the failure, the
// state as it was, no record, the sealer told it failed; the next try
// commits it once.
func TestFailFollowUpCommitLost(t *testing.T) {
	cfg := storetest.Dialects()[1].NewConfig(t)
	db := storetest.Open(t, cfg)
	ctx := ctxT(t)
	mode, err := db.LoseCommits(ctx, cfg.DSN)
	if err != nil {
		t.Fatal(err)
	}
	log := audit.New(db, nil, nil, audit.Options{})
	t.Cleanup(log.Close)
	s := db.Enrolments()
	now := time.Now().UTC().Truncate(time.Second)
	for _, id := range []string{"done", "undone"} {
		if err := s.InsertTransaction(ctx, enrol.Transaction{ID: id, Sender: "ref:" + id, Serial: "0a" + id,
			Created: now.Add(-time.Hour), State: "waiting"}); err != nil {
			t.Fatal(err)
		}
		if err := s.CloseTransaction(ctx, id, "rejecting", now.Add(-time.Minute)); err != nil {
			t.Fatal(err)
		}
	}
	fail := func(id string, lose int32) (*toldSealer, error) {
		t.Helper()
		seal, err := log.Prepare(audit.Entry{Actor: "thiqa-serve", Action: "cmp.followup.failed", Object: "0a" + id,
			Outcome: audit.OutcomeFailure, Details: map[string]any{"transactionID": id}})
		if err != nil {
			t.Fatal(err)
		}
		told := &toldSealer{Sealer: seal}
		mode.Store(lose)
		defer mode.Store(store.CommitKept)
		return told, s.FailFollowUp(ctx, id, now, told)
	}
	want := func(what, id, state string, records int, told *toldSealer, committed, failed int32) {
		t.Helper()
		if got, err := s.GetTransaction(ctx, id); err != nil || got.State != state {
			t.Fatalf("%s: transaction %+v %v, want %s", what, got, err, state)
		}
		if n := storetest.AuditCount(t, db, "cmp.followup.failed", audit.OutcomeFailure); n != records {
			t.Fatalf("%s: %d cmp.followup.failed records, want %d", what, n, records)
		}
		if c, f := told.committed.Load(), told.failed.Load(); c != committed || f != failed {
			t.Fatalf("%s: sealer told committed %d and failed %d times, want %d and %d", what, c, f, committed, failed)
		}
	}

	told, err := fail("done", store.CommitLostDone)
	if err != nil {
		t.Fatalf("FailFollowUp committed, its connection lost: %v, want nil", err)
	}
	want("committed, connection lost", "done", "failed", 1, told, 1, 0)

	told, err = fail("undone", store.CommitLostUndone)
	if !errors.Is(err, store.ErrOutcomeUnknown) {
		t.Fatalf("FailFollowUp not committed, its connection lost: %v, want the failure", err)
	}
	want("not committed, connection lost", "undone", "rejecting", 1, told, 0, 1)
	told, err = fail("undone", store.CommitKept)
	if err != nil {
		t.Fatalf("FailFollowUp tried again: %v", err)
	}
	want("tried again", "undone", "failed", 2, told, 1, 0)
	if rep, err := audit.Verify(ctx, db); err != nil || !rep.OK() {
		t.Fatalf("audit chain: %+v %v", rep, err)
	}
}
