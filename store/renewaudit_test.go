package store_test

import (
	"errors"
	"sync/atomic"
	"testing"

	"github.com/thiqa/thiqa/ca"
	"github.com/thiqa/thiqa/internal/audit"
	"github.com/thiqa/thiqa/internal/auth"
	"github.com/thiqa/thiqa/policies"
	"github.com/thiqa/thiqa/store/storetest"
)

// TestRenewalNeverLacksItsRecord on SQLite and PostgreSQL: when the
// renewal's certificate.renew record cannot be written, Renew fails and
// nothing is renewed (no successor, the old certificate not superseded,
// no new certificate issued); a retry right after renews it, with exactly
// one certificate.renew and one certificate.issue success record.
func TestRenewalNeverLacksItsRecord(t *testing.T) {
	for _, d := range storetest.Dialects() {
		t.Run(d.Name, func(t *testing.T) {
			ctx := ctxT(t)
			db := storetest.Open(t, d.NewConfig(t))
			log := audit.New(db, nil, nil, audit.Options{})
			t.Cleanup(log.Close)
			var down atomic.Bool
			certs := db.Certificates(func(string) int { return 4 })
			a := newAuditedAuthority(t, certs, downAudit{log: log, down: &down, action: ca.ActionRenewCertificate})
			sup := &flakySuperseder{}
			sup.calls.Store(1) // never fails
			rn, err := ca.NewRenewer(ca.RenewerConfig{Authority: a, Store: certs, Superseder: sup})
			if err != nil {
				t.Fatal(err)
			}
			officer := &auth.Principal{Subject: "officer-1", Roles: []policies.Role{policies.RoleRegistrationOfficer}}
			old, err := a.Issue(ctx, citizenRequest(t))
			if err != nil {
				t.Fatal(err)
			}
			issued := func() int {
				return storetest.AuditCount(t, db, string(policies.ActionIssueCertificate), audit.OutcomeSuccess)
			}

			down.Store(true)
			if _, err := rn.Renew(ctx, ca.RenewRequest{Serial: old.Serial, Caller: officer}); err == nil {
				t.Fatal("renewed with the audit log down")
			}
			if succ, err := certs.Successor(ctx, old.Serial); err != nil || succ != "" {
				t.Fatalf("renewed (successor %q, %v) without its certificate.renew record", succ, err)
			}
			if _, ok := sup.revoked.Load(old.Serial); ok {
				t.Fatal("superseded without the renewal's record")
			}
			if n := issued(); n != 1 {
				t.Fatalf("%d certificates issued", n)
			}
			down.Store(false)
			got, err := rn.Renew(ctx, ca.RenewRequest{Serial: old.Serial, Caller: officer})
			if err != nil {
				t.Fatalf("the retry: %v", err)
			}
			if succ, err := certs.Successor(ctx, old.Serial); err != nil || succ != got.Serial {
				t.Fatalf("successor %q %v, want %s", succ, err, got.Serial)
			}
			if _, ok := sup.revoked.Load(old.Serial); !ok {
				t.Fatal("the retry did not supersede the old certificate")
			}
			if n, m := storetest.AuditCount(t, db, ca.ActionRenewCertificate, audit.OutcomeSuccess), issued(); n != 1 || m != 2 {
				t.Fatalf("%d certificate.renew success records, %d certificate.issue", n, m)
			}
			if _, err := rn.Renew(ctx, ca.RenewRequest{Serial: old.Serial, Caller: officer}); !errors.Is(err, ca.ErrAlreadyRenewed) {
				t.Fatalf("renewing twice: %v", err)
			}
			if rep, err := audit.Verify(ctx, db); err != nil || !rep.OK() {
				t.Fatalf("chain: %+v %v", rep, err)
			}
		})
	}
}
