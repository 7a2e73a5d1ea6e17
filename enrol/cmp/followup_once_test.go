package cmp

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/thiqa/thiqa/enrol"
	"github.com/thiqa/thiqa/internal/audit"
	"github.com/thiqa/thiqa/internal/outage"
	"github.com/thiqa/thiqa/store/storetest"
)

// sealFails is a Sealer that fails as the store fails when its connection
// drops while it writes the records.
type sealFails struct{}

func (sealFails) Seal(audit.Head) ([]audit.Record, error) {
	return nil, outage.Mark(fmt.Errorf("store: appending: %w", errDown))
}

func (sealFails) Committed() {}

// failFollowUpDown is a transaction store whose FailFollowUp, while down
// is set, runs in the database and fails after its UPDATE, while the
// records are written (the database lost in the middle): the transaction
// is rolled back, records included.
type failFollowUpDown struct {
	enrol.TransactionStore
	down  atomic.Bool
	tries atomic.Int32
}

func (s *failFollowUpDown) FailFollowUp(ctx context.Context, id string, now time.Time, seal audit.Sealer) error {
	s.tries.Add(1)
	if s.down.Load() {
		return s.TransactionStore.FailFollowUp(ctx, id, now, sealFails{})
	}
	return s.TransactionStore.FailFollowUp(ctx, id, now, seal)
}

// TestCMPFollowUpFailedRecordedOnce on SQLite and PostgreSQL: while the
// database fails each time a follow-up refused for good is to be recorded
// as failed (by the certConf, then by each sweep), the transaction stays
// where it was ("rejecting", claimed again by the next sweep) and no
// cmp.followup.failed record is left behind: the record is written with
// the state change or not at all. Once the database is back, each
// follow-up ends "failed" with exactly one record and one count in
// thiqa_cmp_followup_failed_total, however many tries failed before.
func TestCMPFollowUpFailedRecordedOnce(t *testing.T) {
	for _, d := range storetest.Dialects() {
		t.Run(d.Name, func(t *testing.T) {
			f := newFixture(t, d)
			ctx := t.Context()
			f.closedRejecting(t, "0bad", "7f00dead") // unknown certificate: refused for good
			down := &failFollowUpDown{TransactionStore: f.srv.c.Transactions}
			down.down.Store(true)
			f.srv.c.Transactions = down
			f.srv.c.Revoker = revokeRefused{}

			// A certConf whose rejection is refused for good: not given up
			// yet (the database fails), so answered as pending.
			cl, ip := f.enrolIR(t, nil)
			if a := f.certConf(t, cl, ip, true); a.m.bodyType != bodyPKIConf {
				t.Fatalf("rejecting certConf while the failure cannot be recorded: %s %s, want pkiConf (the sweep retries)",
					bodyName(a.m.bodyType), a.failInfo)
			}
			for i := range 3 {
				f.advance(enrol.ExpiryLease + time.Second)
				n, err := f.srv.RetryFollowUps(ctx)
				if n != 0 || err == nil || errors.Is(err, errGivenUp) || !errors.Is(err, errDown) {
					t.Fatalf("retry %d while the database fails: %d, %v; want 0 and the failure", i, n, err)
				}
			}
			if got := down.tries.Load(); got != 1+3*2 {
				t.Fatalf("%d tries to record a follow-up as failed, want 7 (the certConf's, then two each sweep)", got)
			}
			for _, id := range []string{"0bad", fmt.Sprintf("%x", cl.tx)} {
				if got, err := f.db.Enrolments().GetTransaction(ctx, id); err != nil || got.State != "rejecting" {
					t.Fatalf("transaction %s while the database fails: %+v %v, want rejecting (rolled back, retried)", id, got, err)
				}
			}
			if c, m := storetest.AuditCount(t, f.db, ActionFollowUpFailed, "failure"), f.failedCount("rejecting"); c != 0 || m != 0 {
				t.Fatalf("%d cmp.followup.failed records and %v counted while the database fails, want none: "+
					"a failure record without its state change", c, m)
			}

			down.down.Store(false)
			f.advance(enrol.ExpiryLease + time.Second)
			if n, err := f.srv.RetryFollowUps(ctx); n != 0 || err != nil {
				t.Fatalf("retry once the database is back: %d, %v; want 0 and no failure to retry", n, err)
			}
			f.advance(enrol.ExpiryLease + time.Second)
			if n, err := f.srv.RetryFollowUps(ctx); n != 0 || err != nil {
				t.Fatalf("later retry: %d, %v; want nothing claimed", n, err)
			}
			for _, id := range []string{"0bad", fmt.Sprintf("%x", cl.tx)} {
				if got, err := f.db.Enrolments().GetTransaction(ctx, id); err != nil || got.State != "failed" {
					t.Fatalf("transaction %s: %+v %v, want failed", id, got, err)
				}
			}
			if c, m := storetest.AuditCount(t, f.db, ActionFollowUpFailed, "failure"), f.failedCount("rejecting"); c != 2 || m != 2 {
				t.Fatalf("%d cmp.followup.failed records and %v counted, want 2 and 2 (one each)", c, m)
			}
		})
	}
}
