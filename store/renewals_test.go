package store_test

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/thiqa/thiqa/ca"
	"github.com/thiqa/thiqa/internal/auth"
	"github.com/thiqa/thiqa/policies"
	"github.com/thiqa/thiqa/store"
	"github.com/thiqa/thiqa/store/storetest"
)

// flakySuperseder fails its first call, as a crash between the issuance
// of a renewal and the revocation of what it replaces would leave it.
type flakySuperseder struct {
	calls   atomic.Int32
	revoked sync.Map
}

func (s *flakySuperseder) RevokeSuperseded(_ context.Context, _, serial string) error {
	if s.calls.Add(1) == 1 {
		return errors.New("the revocation service is down")
	}
	s.revoked.Store(serial, true)
	return nil
}

// TestRenewalInProcess on SQLite and PostgreSQL: the renewal API that
// CMP/EST key update call in process (ca.Renewer.Renew with the caller's
// principal). A renewal whose follow-up failed is issued and completed by
// the sweep; a certificate is replaced once, also when two renewals race;
// the expiry queries see only what is valid and not renewed.
func TestRenewalInProcess(t *testing.T) {
	for _, d := range storetest.Dialects() {
		t.Run(d.Name, func(t *testing.T) {
			ctx := ctxT(t)
			db := storetest.Open(t, d.NewConfig(t))
			certs := db.Certificates(func(string) int { return 4 })
			a := newAuthority(t, certs)
			sup := &flakySuperseder{}
			rn, err := ca.NewRenewer(ca.RenewerConfig{Authority: a, Store: certs, Superseder: sup})
			if err != nil {
				t.Fatal(err)
			}
			citizen := &auth.Principal{Subject: "12345678", CivilNumber: "12345678", Roles: []policies.Role{policies.RoleCitizen}}
			stranger := &auth.Principal{Subject: "23456789", CivilNumber: "23456789", Roles: []policies.Role{policies.RoleCitizen}}
			officer := &auth.Principal{Subject: "officer-1", Roles: []policies.Role{policies.RoleRegistrationOfficer}}

			old, err := a.Issue(ctx, citizenRequest(t))
			if err != nil {
				t.Fatal(err)
			}
			if _, err := rn.Renew(ctx, ca.RenewRequest{Serial: old.Serial, Caller: stranger}); !errors.Is(err, ca.ErrNotPermitted) {
				t.Fatalf("another citizen renews: %v", err)
			}
			got, err := rn.Renew(ctx, ca.RenewRequest{Serial: old.Serial, Caller: citizen})
			if err != nil || got.Replaces != old.Serial {
				t.Fatalf("renew: %+v %v", got, err)
			}
			if !bytes.Equal(got.Certificate.RawSubjectPublicKeyInfo, old.Certificate.RawSubjectPublicKeyInfo) || got.Certificate.Subject.String() != old.Certificate.Subject.String() {
				t.Fatal("the renewal changed the key or the subject")
			}
			// The superseder failed: issued, not complete yet; the sweep completes it.
			pending, err := certs.PendingRenewals(ctx, 10)
			if err != nil || len(pending) != 1 || pending[0].Serial != got.Serial {
				t.Fatalf("pending after a failed follow-up: %+v %v", pending, err)
			}
			if n, err := rn.CompletePending(ctx); err != nil || n != 1 {
				t.Fatalf("sweep: %d %v", n, err)
			}
			if _, ok := sup.revoked.Load(old.Serial); !ok {
				t.Fatal("the sweep did not revoke the replaced certificate")
			}
			if pending, _ := certs.PendingRenewals(ctx, 10); len(pending) != 0 {
				t.Fatalf("still pending: %+v", pending)
			}
			if succ, err := certs.Successor(ctx, old.Serial); err != nil || succ != got.Serial {
				t.Fatalf("successor: %q %v", succ, err)
			}
			_, err = rn.Renew(ctx, ca.RenewRequest{Serial: old.Serial, Caller: officer})
			var re *ca.RenewalError
			if !errors.Is(err, ca.ErrAlreadyRenewed) || !errors.As(err, &re) || re.Successor != got.Serial {
				t.Fatalf("renewing twice: %v", err)
			}

			// Two renewals of one certificate race: one wins.
			var wg sync.WaitGroup
			var wins atomic.Int32
			errs := make(chan error, 4)
			for range 4 {
				wg.Add(1)
				go func() {
					defer wg.Done()
					if _, err := rn.Renew(ctx, ca.RenewRequest{Serial: got.Serial, Caller: officer}); err == nil {
						wins.Add(1)
					} else {
						errs <- err
					}
				}()
			}
			wg.Wait()
			close(errs)
			if wins.Load() != 1 {
				t.Fatalf("%d racing renewals issued, want 1", wins.Load())
			}
			for err := range errs {
				if !errors.Is(err, ca.ErrAlreadyRenewed) && !errors.Is(err, ca.ErrDuplicateRequest) {
					t.Fatalf("a losing renewal: %v", err)
				}
			}

			// What expires: the newest only (the others are replaced).
			now := time.Now()
			exp, err := certs.Expiring(ctx, now, now.Add(800*24*time.Hour), 10)
			if err != nil || len(exp) != 1 || exp[0].Replaces != got.Serial {
				t.Fatalf("expiring: %+v %v", exp, err)
			}
			counts, err := certs.CountExpiring(ctx, now, now.Add(800*24*time.Hour))
			if err != nil || counts[policies.ProfileCitizenAuth] != 1 {
				t.Fatalf("counts: %v %v", counts, err)
			}
			if exp, _ := certs.Expiring(ctx, now, now.Add(24*time.Hour), 10); len(exp) != 0 {
				t.Fatalf("expiring within a day: %+v", exp)
			}
		})
	}
}

// failingCompletion fails CompleteRenewal once, as a database failure (or a
// crash) right after a renewal's issuance would leave it.
type failingCompletion struct {
	*store.Certificates
	failed atomic.Bool
}

func (f *failingCompletion) CompleteRenewal(ctx context.Context, serial string, at time.Time) error {
	if f.failed.CompareAndSwap(false, true) {
		return errors.New("the database is down")
	}
	return f.Certificates.CompleteRenewal(ctx, serial, at)
}

// TestRenewalKeepReplacedNotSwept on SQLite and PostgreSQL: a renewal
// that keeps the replaced certificate until its holder confirms the new
// one (a CMP kur without implicit confirmation) is nothing for the renewal
// sweep to complete, from its intent on: neither when its follow-up
// failed, nor while it is being issued. Only Supersede (the confirmation)
// revokes the replaced certificate.
func TestRenewalKeepReplacedNotSwept(t *testing.T) {
	for _, d := range storetest.Dialects() {
		t.Run(d.Name, func(t *testing.T) {
			ctx := ctxT(t)
			db := storetest.Open(t, d.NewConfig(t))
			certs := db.Certificates(func(string) int { return 4 })
			a := newAuthority(t, certs)
			sup := &flakySuperseder{}
			sup.calls.Store(1) // no failure
			rs := &failingCompletion{Certificates: certs}
			rn, err := ca.NewRenewer(ca.RenewerConfig{Authority: a, Store: rs, Superseder: sup})
			if err != nil {
				t.Fatal(err)
			}
			citizen := &auth.Principal{Subject: "12345678", CivilNumber: "12345678", Roles: []policies.Role{policies.RoleCitizen}}
			old, err := a.Issue(ctx, citizenRequest(t))
			if err != nil {
				t.Fatal(err)
			}
			k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
			if err != nil {
				t.Fatal(err)
			}
			got, err := rn.Renew(ctx, ca.RenewRequest{Serial: old.Serial, PublicKey: k.Public(), PossessionProvedBy: "crmf-signature",
				KeepReplaced: true, Caller: citizen})
			if err != nil {
				t.Fatal(err)
			}
			if !rs.failed.Load() {
				t.Fatal("CompleteRenewal was not called")
			}
			if pending, err := certs.PendingRenewals(ctx, 10); err != nil || len(pending) != 0 {
				t.Fatalf("%d pending renewals (%v), want none", len(pending), err)
			}
			if _, err := rn.CompletePending(ctx); err != nil {
				t.Fatal(err)
			}
			if _, ok := sup.revoked.Load(old.Serial); ok {
				t.Fatal("the renewal sweep superseded the replaced certificate before its successor was confirmed")
			}
			if rep, err := rn.Supersede(ctx, "holder", got.Serial); err != nil || rep != old.Serial {
				t.Fatalf("supersede: %q %v", rep, err)
			}
			if _, ok := sup.revoked.Load(old.Serial); !ok {
				t.Fatal("Supersede did not revoke the replaced certificate")
			}
		})
	}
}
