package cmp

import (
	"context"
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/thiqa/thiqa/enrol"
	"github.com/thiqa/thiqa/internal/audit"
	"github.com/thiqa/thiqa/store/storetest"
)

// closedFirst is a transaction store whose next CloseTransaction lets
// another close the transaction first (first), as a sweep, or a certConf
// sent at the same time, does between a certConf's read of its
// transaction and its claim.
type closedFirst struct {
	enrol.TransactionStore
	first func()
}

func (s *closedFirst) CloseTransaction(ctx context.Context, id, state string, now time.Time) error {
	if first := s.first; first != nil {
		s.first = nil
		first()
	}
	return s.TransactionStore.CloseTransaction(ctx, id, state, now)
}

// TestCMPLateCertConfClosedMeanwhile on SQLite and PostgreSQL: a late
// certConf that finds its transaction closed by another after it read it
// waiting is answered as the transaction now stands, not certRevoked
// blindly: systemFailure when the sweep took it and gave up its
// revocation (the certificate may still be valid, for an operator to
// settle), certConfirmed when a certConf sent at the deadline confirmed
// it (its certificate is valid), certRevoked when the sweep revoked it.
func TestCMPLateCertConfClosedMeanwhile(t *testing.T) {
	for _, d := range storetest.Dialects() {
		t.Run(d.Name, func(t *testing.T) {
			f := newFixture(t, d)
			ctx := t.Context()
			store := f.srv.c.Transactions
			lateCertConf := func(first func(id string)) answer {
				t.Helper()
				cl, ip := f.enrolIR(t, nil)
				f.advance(enrol.ConfirmWaitTime + time.Second)
				f.srv.c.Transactions = &closedFirst{TransactionStore: store, first: func() { first(fmt.Sprintf("%x", cl.tx)) }}
				defer func() { f.srv.c.Transactions = store }()
				return f.certConf(t, cl, ip, false)
			}

			a := lateCertConf(func(string) {
				f.srv.c.Revoker = revokeRefused{}
				defer func() { f.srv.c.Revoker = f.revoker }()
				if n, err := f.srv.ExpireUnconfirmed(ctx); n != 0 || err != nil {
					t.Fatalf("sweep: %d, %v; want 0 and no failure to retry", n, err)
				}
			})
			wantGivenUp(t, "late certConf whose transaction the sweep gave up meanwhile", a)

			a = lateCertConf(func(id string) {
				if err := store.CloseTransaction(ctx, id, "confirmed", f.now().Add(-2*time.Second)); err != nil {
					t.Fatal(err)
				}
			})
			if a.m.bodyType != bodyError || a.failInfo != "certConfirmed" {
				t.Fatalf("late certConf whose transaction was confirmed meanwhile: %s %s, want certConfirmed", bodyName(a.m.bodyType), a.failInfo)
			}

			a = lateCertConf(func(string) {
				if n, err := f.srv.ExpireUnconfirmed(ctx); n != 1 || err != nil {
					t.Fatalf("sweep: %d, %v; want 1", n, err)
				}
			})
			if a.m.bodyType != bodyError || a.failInfo != "certRevoked" {
				t.Fatalf("late certConf whose certificate the sweep revoked meanwhile: %s %s, want certRevoked", bodyName(a.m.bodyType), a.failInfo)
			}
		})
	}
}

// TestCMPGivenUpRecordSaysNotPending on SQLite and PostgreSQL: the
// cmp.followup.failed record of a follow-up that the certConf itself gave
// up does not call it pending (followUp), as the cmp.certconf record of a
// follow-up left to the sweep does: an auditor reads it as failed for
// good, as the record's action, outcome and note say.
func TestCMPGivenUpRecordSaysNotPending(t *testing.T) {
	for _, d := range storetest.Dialects() {
		t.Run(d.Name, func(t *testing.T) {
			f := newFixture(t, d)
			cl, ip := f.enrolIR(t, nil)
			f.srv.c.Revoker = revokeRefused{}
			wantGivenUp(t, "rejecting certConf whose revocation is refused for good", f.certConf(t, cl, ip, true))
			var records []map[string]any
			if err := f.db.AuditRecords(t.Context(), 1, func(r audit.Record) error {
				if r.Action == ActionFollowUpFailed {
					var d map[string]any
					if err := json.Unmarshal(r.Details, &d); err != nil {
						return err
					}
					records = append(records, d)
				}
				return nil
			}); err != nil {
				t.Fatal(err)
			}
			if len(records) != 1 {
				t.Fatalf("%d cmp.followup.failed records, want 1", len(records))
			}
			if v, ok := records[0]["followUp"]; ok {
				t.Fatalf("cmp.followup.failed record with followUp %v: %v", v, records[0])
			}
		})
	}
}
