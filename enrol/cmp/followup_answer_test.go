package cmp

import (
	"encoding/hex"
	"encoding/json"
	"testing"
	"time"

	"github.com/thiqa/thiqa/enrol"
	"github.com/thiqa/thiqa/internal/audit"
	"github.com/thiqa/thiqa/store/storetest"
)

// wantGivenUp fails unless a is the answer to a certConf whose
// transaction the server gave up: an error message, PKIStatus rejection,
// failInfo systemFailure.
func wantGivenUp(t *testing.T, what string, a answer) {
	t.Helper()
	if a.m.bodyType != bodyError || a.status != statusRejection || a.failInfo != "systemFailure" {
		t.Fatalf("%s: %s status %d %s; want an error message, rejection, systemFailure", what, bodyName(a.m.bodyType), a.status, a.failInfo)
	}
}

// refusals returns the failInfo of each enrolment.refused record of the
// CMP transaction tx, in order.
func (f *fixture) refusals(t *testing.T, tx []byte) []string {
	t.Helper()
	var out []string
	if err := f.db.AuditRecords(t.Context(), 1, func(r audit.Record) error {
		if r.Action != enrol.ActionRefused {
			return nil
		}
		var d map[string]any
		if err := json.Unmarshal(r.Details, &d); err != nil {
			return err
		}
		if d["transactionID"] == hex.EncodeToString(tx) {
			out = append(out, d["failInfo"].(string))
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return out
}

// TestCMPCertConfAfterGiveUp on SQLite and PostgreSQL: a certConf for a
// transaction whose follow-up the server gave up ("failed") is never
// answered as if all were well: not pkiConf when the certConf's own
// follow-up is given up, nor certConfirmed when the client sends its
// certConf again, nor for a transaction given up by the sweep (a
// rejection whose revocation, first failing for a moment, is then
// refused for good) or an unconfirmed certificate whose revocation was
// given up. The answer is an error message, PKIStatus rejection,
// failInfo systemFailure (RFC 9810), and each is recorded as a refusal.
func TestCMPCertConfAfterGiveUp(t *testing.T) {
	for _, d := range storetest.Dialects() {
		t.Run(d.Name, func(t *testing.T) {
			f := newFixture(t, d)
			ctx := t.Context()

			// Given up by the certConf itself, then sent again.
			cl, ip := f.enrolIR(t, nil)
			f.srv.c.Revoker = revokeRefused{}
			wantGivenUp(t, "rejecting certConf whose revocation is refused for good", f.certConf(t, cl, ip, true))
			if got := f.state(t, cl.tx); got != "failed" {
				t.Fatalf("transaction %s, want failed", got)
			}
			wantGivenUp(t, "the certConf sent again", f.certConf(t, cl, ip, true))
			wantGivenUp(t, "a confirming certConf for it", f.certConf(t, cl, ip, false))
			if got := f.refusals(t, cl.tx); len(got) != 3 || got[0] != "systemFailure" || got[2] != "systemFailure" {
				t.Fatalf("refusal records of the transaction: %v, want 3 systemFailure", got)
			}
			if c := storetest.AuditCount(t, f.db, "cmp.certconf", audit.OutcomeSuccess); c != 0 {
				t.Fatalf("%d cmp.certconf success records for a transaction given up", c)
			}

			// Given up by the sweep: pending when the certConf came.
			cl, ip = f.enrolIR(t, nil)
			f.srv.c.Revoker = revokeFails{}
			if a := f.certConf(t, cl, ip, true); a.m.bodyType != bodyPKIConf {
				t.Fatalf("rejecting certConf whose revocation fails for a moment: %s %s, want pkiConf", bodyName(a.m.bodyType), a.failInfo)
			}
			f.srv.c.Revoker = revokeRefused{}
			f.advance(enrol.ExpiryLease + time.Second)
			if n, err := f.srv.RetryFollowUps(ctx); n != 0 || err != nil {
				t.Fatalf("retry: %d, %v; want 0 and no failure to retry", n, err)
			}
			if got := f.state(t, cl.tx); got != "failed" {
				t.Fatalf("transaction %s after the sweep, want failed", got)
			}
			wantGivenUp(t, "certConf sent again after the sweep gave up", f.certConf(t, cl, ip, true))

			// An unconfirmed certificate whose revocation the sweep gave up.
			cl, ip = f.enrolIR(t, nil)
			f.advance(enrol.ConfirmWaitTime + time.Second)
			if n, err := f.srv.ExpireUnconfirmed(ctx); n != 0 || err != nil {
				t.Fatalf("expiry: %d, %v; want 0 and no failure to retry", n, err)
			}
			if got := f.state(t, cl.tx); got != "failed" {
				t.Fatalf("unconfirmed transaction %s, want failed", got)
			}
			wantGivenUp(t, "late certConf after the revocation was given up", f.certConf(t, cl, ip, false))
			if c := f.failedCount("rejecting") + f.failedCount("expiring"); c != 3 {
				t.Fatalf("%v follow-ups counted as given up, want 3 (the certConfs given up once each)", c)
			}
		})
	}
}
