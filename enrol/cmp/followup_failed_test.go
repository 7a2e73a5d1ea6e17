package cmp

import (
	"context"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/thiqa/thiqa/ca"
	"github.com/thiqa/thiqa/ca/revocation"
	"github.com/thiqa/thiqa/enrol"
	"github.com/thiqa/thiqa/internal/audit"
	"github.com/thiqa/thiqa/internal/outage"
	"github.com/thiqa/thiqa/store/storetest"
)

// revokeRefused is a Revoker that refuses every revocation for good, as
// the revocation service refuses a serial it does not know.
type revokeRefused struct{ enrol.Revoker }

func (revokeRefused) Revoke(_ context.Context, _, serial, _ string, _ func(*x509.Certificate) bool) (*revocation.Result, error) {
	return nil, &revocation.Refusal{Reason: revocation.ErrNotFound, Detail: "no certificate with serial " + serial}
}

// revokeTimesOut is a Revoker whose every call runs out of time.
type revokeTimesOut struct{ enrol.Revoker }

func (revokeTimesOut) Revoke(context.Context, string, string, string, func(*x509.Certificate) bool) (*revocation.Result, error) {
	return nil, fmt.Errorf("revoking: %w", context.DeadlineExceeded)
}

// failedCount is thiqa_cmp_followup_failed_total{state}.
func (f *fixture) failedCount(state string) float64 {
	return testutil.ToFloat64(f.srv.followUpFailed.WithLabelValues(state))
}

// closedRejecting records a transaction for serial that a certConf
// rejected a minute ago and whose follow-up is undone.
func (f *fixture) closedRejecting(t *testing.T, id, serial string) {
	t.Helper()
	ctx := t.Context()
	if err := f.db.Enrolments().InsertTransaction(ctx, enrol.Transaction{ID: id, Sender: "ref:GONE", Serial: serial,
		Created: f.now().Add(-time.Minute), State: "waiting"}); err != nil {
		t.Fatal(err)
	}
	if err := f.db.Enrolments().CloseTransaction(ctx, id, "rejecting", f.now().Add(-time.Minute)); err != nil {
		t.Fatal(err)
	}
}

// TestCMPFollowUpGivesUpOnPermanentRefusal on SQLite and PostgreSQL: a
// rejection whose certificate the store does not know (inconsistent data)
// is refused by the revocation service for good. The sweep no longer
// claims it every 5 minutes for ever: at its first retry it ends "failed",
// with one cmp.followup.failed record (outcome failure, the error and what
// to do) and thiqa_cmp_followup_failed_total{state="rejecting"} counted,
// and no later sweep takes it again. A follow-up that times out, or whose
// revocation service is down, is still retried; one refused for good when
// the certConf comes fails at once (the client is answered systemFailure);
// an unconfirmed certificate's revocation refused for good ends the same
// way.
func TestCMPFollowUpGivesUpOnPermanentRefusal(t *testing.T) {
	for _, d := range storetest.Dialects() {
		t.Run(d.Name, func(t *testing.T) {
			f := newFixture(t, d)
			ctx := t.Context()
			f.closedRejecting(t, "0bad", "7f00dead") // unknown certificate: refused for good
			f.closedRejecting(t, "0510", "7f00beef") // the revocation times out
			f.closedRejecting(t, "0d0e", "7f00d0e5") // the revocation service is down
			f.srv.c.Revoker = revokeFailsFor{Revoker: revokeTimesOutFor{Revoker: f.revoker, serial: "7f00beef"}, serial: "7f00d0e5"}

			f.advance(enrol.ExpiryLease + time.Second)
			n, err := f.srv.RetryFollowUps(ctx)
			if n != 0 || err == nil || !errors.Is(err, context.DeadlineExceeded) || !errors.Is(err, errDown) {
				t.Fatalf("retry: %d done, %v; want 0 and the two transient failures", n, err)
			}
			got, err := f.db.Enrolments().GetTransaction(ctx, "0bad")
			if err != nil || got.State != "failed" {
				t.Fatalf("the transaction refused for good: %+v %v, want failed", got, err)
			}
			for _, id := range []string{"0510", "0d0e"} {
				if got, err := f.db.Enrolments().GetTransaction(ctx, id); err != nil || got.State != "rejecting" {
					t.Fatalf("transaction %s failing for a moment: %+v %v, want rejecting (retried)", id, got, err)
				}
			}
			var recs []audit.Record
			if err := f.db.AuditRecords(ctx, 1, func(r audit.Record) error {
				if r.Action == ActionFollowUpFailed {
					recs = append(recs, r)
				}
				return nil
			}); err != nil {
				t.Fatal(err)
			}
			if len(recs) != 1 || recs[0].Object != "7f00dead" || recs[0].Outcome != audit.OutcomeFailure || recs[0].Actor != expiryActor {
				t.Fatalf("cmp.followup.failed records: %+v, want one failure for 7f00dead", recs)
			}
			var details map[string]any
			if err := json.Unmarshal(recs[0].Details, &details); err != nil {
				t.Fatal(err)
			}
			if details["transactionID"] != "0bad" || details["state"] != "rejecting" || details["error"] == nil || details["note"] == nil {
				t.Fatalf("cmp.followup.failed details: %v", details)
			}
			if c := f.failedCount("rejecting"); c != 1 {
				t.Fatalf("thiqa_cmp_followup_failed_total{state=rejecting} = %v, want 1", c)
			}

			// The next sweep retries the transient ones, whose certificates
			// are unknown too: now refused for good; the failed one is left.
			f.srv.c.Revoker = f.revoker
			f.advance(enrol.ExpiryLease + time.Second)
			if n, err := f.srv.RetryFollowUps(ctx); n != 0 || err != nil {
				t.Fatalf("second retry: %d, %v; want 0 and no failure to retry", n, err)
			}
			if c := storetest.AuditCount(t, f.db, ActionFollowUpFailed, "failure"); c != 3 {
				t.Fatalf("%d cmp.followup.failed records after the second retry, want 3 (one each)", c)
			}
			f.advance(enrol.ExpiryLease + time.Second)
			if n, err := f.srv.RetryFollowUps(ctx); n != 0 || err != nil {
				t.Fatalf("third retry: %d, %v; want nothing claimed", n, err)
			}
			if c, r := storetest.AuditCount(t, f.db, ActionFollowUpFailed, "failure"), f.failedCount("rejecting"); c != 3 || r != 3 {
				t.Fatalf("%d records and %v counted after the third retry, want 3 and 3: a failed transaction was claimed again", c, r)
			}

			// Refused for good when the certConf comes: failed at once, and
			// the client told so (systemFailure, TestCMPCertConfAfterGiveUp).
			cl, ip := f.enrolIR(t, nil)
			f.srv.c.Revoker = revokeRefused{}
			wantGivenUp(t, "rejecting certConf", f.certConf(t, cl, ip, true))
			f.srv.c.Revoker = f.revoker
			if got := f.state(t, cl.tx); got != "failed" {
				t.Fatalf("transaction %s, want failed", got)
			}
			if c := f.failedCount("rejecting"); c != 4 {
				t.Fatalf("thiqa_cmp_followup_failed_total{state=rejecting} = %v, want 4", c)
			}

			// An unconfirmed certificate whose revocation is refused for good.
			cl, _ = f.enrolIR(t, nil)
			f.srv.c.Revoker = revokeRefused{}
			f.advance(enrol.ConfirmWaitTime + time.Second)
			if n, err := f.srv.ExpireUnconfirmed(ctx); n != 0 || err != nil {
				t.Fatalf("expiry: %d, %v; want 0 and no failure to retry", n, err)
			}
			f.srv.c.Revoker = f.revoker
			if got := f.state(t, cl.tx); got != "failed" {
				t.Fatalf("unconfirmed transaction %s, want failed", got)
			}
			if c := f.failedCount("expiring"); c != 1 {
				t.Fatalf("thiqa_cmp_followup_failed_total{state=expiring} = %v, want 1", c)
			}
			f.advance(enrol.ExpiryLease + time.Second)
			if n := f.expire(t); n != 0 {
				t.Fatalf("the failed unconfirmed transaction was claimed again: %d", n)
			}
		})
	}
}

// revokeTimesOutFor is a Revoker whose calls for serial run out of time.
type revokeTimesOutFor struct {
	enrol.Revoker
	serial string
}

func (r revokeTimesOutFor) Revoke(ctx context.Context, actor, serial, reason string, allow func(*x509.Certificate) bool) (*revocation.Result, error) {
	if serial == r.serial {
		return revokeTimesOut{}.Revoke(ctx, actor, serial, reason, allow)
	}
	return r.Revoker.Revoke(ctx, actor, serial, reason, allow)
}

// TestPermanentFollowUpFailure: which failures of a follow-up are given up
// (by type or sentinel, never by text) and which are retried.
func TestPermanentFollowUpFailure(t *testing.T) {
	refusal := func(reason error) error {
		return fmt.Errorf("cmp: rejected certificate 7f (transaction 01): revoking: %w", &revocation.Refusal{Reason: reason, Detail: "refused"})
	}
	for _, c := range []struct {
		name string
		err  error
		want bool
	}{
		{"unknown certificate", refusal(revocation.ErrNotFound), true},
		{"malformed serial", refusal(revocation.ErrBadSerial), true},
		{"unknown reason", refusal(revocation.ErrBadReason), true},
		{"not permitted", refusal(revocation.ErrNotPermitted), true},
		{"certificate not in the store", fmt.Errorf("reading the certificate: %w", ca.ErrNotFound), true},
		{"key update not withdrawable", fmt.Errorf("withdrawing its key update: %w", ca.ErrNotWithdrawable), true},
		{"database down", errDown, false},
		{"outage", outage.Mark(errors.New("store: database unavailable")), false},
		{"timeout", fmt.Errorf("revoking: %w", context.DeadlineExceeded), false},
		{"cancelled", context.Canceled, false},
		{"refusal joined with an outage", errors.Join(refusal(revocation.ErrNotFound), outage.Mark(errDown)), false},
		{"refusal joined with a timeout", errors.Join(refusal(revocation.ErrNotFound), context.DeadlineExceeded), false},
		{"text of a refusal", errors.New(revocation.ErrNotFound.Error()), false},
		{"nil", nil, false},
	} {
		if got := permanentFailure(c.err); got != c.want {
			t.Errorf("%s: permanent %v, want %v", c.name, got, c.want)
		}
	}
}

// TestFollowUpFailedExportedFromTheStart: the counter of follow-ups given
// up has its series at zero before the first, so that the alert
// ThiqaCMPFollowUpFailed sees the first as an increase.
func TestFollowUpFailedExportedFromTheStart(t *testing.T) {
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(newFollowUpFailedMetric())
	n, err := testutil.GatherAndCount(reg, "thiqa_cmp_followup_failed_total")
	if err != nil || n != len(followUpStates) {
		t.Fatalf("%d series, %v; want %d", n, err, len(followUpStates))
	}
}

// TestCMPLateCertConfGivesUpAsExpiring on SQLite and PostgreSQL: a
// certConf after the deadline claims its transaction (expiring) and
// revokes the certificate itself; when that revocation is refused for
// good, the follow-up given up is the one of an unconfirmed certificate:
// its cmp.followup.failed record says state "expiring" (what
// docs/operations.md tells the operator to act on) and it is counted in
// thiqa_cmp_followup_failed_total{state="expiring"}, not under the state
// the transaction had before the claim ("waiting", a series the alert's
// runbook does not know).
func TestCMPLateCertConfGivesUpAsExpiring(t *testing.T) {
	for _, d := range storetest.Dialects() {
		t.Run(d.Name, func(t *testing.T) {
			f := newFixture(t, d)
			ctx := t.Context()
			cl, ip := f.enrolIR(t, nil)
			f.advance(enrol.ConfirmWaitTime + time.Second)
			f.srv.c.Revoker = revokeRefused{}
			if a := f.certConf(t, cl, ip, false); a.m.bodyType != bodyError {
				t.Fatalf("late certConf whose revocation is refused for good: %s %s, want an error", bodyName(a.m.bodyType), a.failInfo)
			}
			f.srv.c.Revoker = f.revoker
			if got := f.state(t, cl.tx); got != "failed" {
				t.Fatalf("transaction %s, want failed", got)
			}
			if n := testutil.CollectAndCount(f.srv.followUpFailed); n != len(followUpStates) {
				t.Fatalf("%d series of thiqa_cmp_followup_failed_total, want %d (%v)", n, len(followUpStates), followUpStates)
			}
			if c := f.failedCount("expiring"); c != 1 {
				t.Fatalf("thiqa_cmp_followup_failed_total{state=expiring} = %v, want 1", c)
			}
			var states []any
			if err := f.db.AuditRecords(ctx, 1, func(r audit.Record) error {
				if r.Action == ActionFollowUpFailed {
					var details map[string]any
					if err := json.Unmarshal(r.Details, &details); err != nil {
						return err
					}
					states = append(states, details["state"])
				}
				return nil
			}); err != nil {
				t.Fatal(err)
			}
			if len(states) != 1 || states[0] != "expiring" {
				t.Fatalf("cmp.followup.failed states %v, want [expiring]", states)
			}
		})
	}
}
