package revocation_test

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"

	"github.com/thiqa/thiqa/ca"
	"github.com/thiqa/thiqa/ca/revocation"
	"github.com/thiqa/thiqa/store/storetest"
)

// downCA is a CA that cannot issue for its first fails calls.
type downCA struct {
	revocation.Certifier
	fails atomic.Int32
}

func (c *downCA) Issue(ctx context.Context, req ca.Request) (*ca.Issued, error) {
	if c.fails.Add(-1) >= 0 {
		return nil, errors.New("the CA store is unreachable")
	}
	return c.Certifier.Issue(ctx, req)
}

// A responder renewal whose certificate cannot be issued (the CA down)
// leaves its new key for the next try: renewals retried every few seconds
// (a revoked responder) do not fill the token with keys.
func TestResponderRenewalRetriesReuseTheKey(t *testing.T) {
	for _, d := range storetest.Dialects() {
		t.Run(d.Name, func(t *testing.T) {
			f := newFixture(t, d)
			certPath, _ := f.rp.Paths("citizen")
			first := readCert(t, certPath)
			down := &downCA{Certifier: f.pki.Authority}
			down.fails.Store(3)
			rp := revocation.NewResponders(revocation.ResponderOptions{Dir: f.dir, Keys: f.keys, CA: down,
				Subjects: map[string]revocation.ResponderSubject{"citizen": {Organization: "Thiqa Test"}}, Actor: "thiqa-serve",
				Renewals: f.db.OCSPResponderRenewals(), Audit: f.log})
			f.keys.mu.Lock()
			before := f.keys.generated
			f.keys.mu.Unlock()
			for range 3 {
				if _, err := rp.RenewRevokedResponder(t.Context(), "citizen", first); err == nil {
					t.Fatal("renewed while the CA is down")
				}
			}
			rn, err := rp.RenewRevokedResponder(t.Context(), "citizen", first)
			if err != nil {
				t.Fatal(err)
			}
			f.keys.mu.Lock()
			generated := f.keys.generated - before
			f.keys.mu.Unlock()
			if generated != 1 {
				t.Fatalf("%d keys generated for one renewal tried 4 times, want 1", generated)
			}
			if rn.Responder.Cert == nil || pubEqual(rn.Responder.Cert.PublicKey, first.PublicKey) {
				t.Fatal("no new responder, or the old one's key")
			}
			if !pubEqual(rn.Responder.Signer.Public(), rn.Responder.Cert.PublicKey) {
				t.Fatal("the new responder's certificate is not for its key")
			}
			// The next renewal makes a new key again.
			again, err := rp.RenewResponder(t.Context(), "citizen", rn.Responder.Cert)
			if err != nil {
				t.Fatal(err)
			}
			if again.Responder.Cert == nil || pubEqual(again.Responder.Cert.PublicKey, rn.Responder.Cert.PublicKey) {
				t.Fatal("a renewal after a successful one reused its key")
			}
		})
	}
}
