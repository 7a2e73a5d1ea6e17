package timestamp_test

import (
	"context"
	"crypto"
	"crypto/x509"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/thiqa/thiqa/store/storetest"
	"github.com/thiqa/thiqa/timestamp"
)

// downCertifier is a CA that cannot be reached for its first fails calls.
type downCertifier struct {
	inner timestamp.Certifier
	fails atomic.Int32
}

func (c *downCertifier) CertifyUnit(ctx context.Context, pub crypto.PublicKey, credentialID, actor string) (*x509.Certificate, *x509.Certificate, error) {
	if c.fails.Add(-1) >= 0 {
		return nil, nil, errors.New("the CA is unreachable")
	}
	return c.inner.CertifyUnit(ctx, pub, credentialID, actor)
}

// A renewal that fails to have its new key certified (the CA down) leaves
// that key for the next one: renewals retried every few seconds (a
// revoked unit) do not fill the token with keys, and the unit it finally
// makes has that key.
func TestUnitRenewalRetriesReuseTheKey(t *testing.T) {
	for _, d := range storetest.Dialects() {
		t.Run(d.Name, func(t *testing.T) {
			f := newFixture(t, d)
			first, err := f.units.Init(t.Context(), "thiqa-init")
			if err != nil {
				t.Fatal(err)
			}
			ca := &downCertifier{inner: f.units.CA}
			ca.fails.Store(3)
			units := &timestamp.Units{Dir: f.units.Dir, KeyLabel: f.units.KeyLabel, Keys: f.keys, CA: ca}
			f.keys.mu.Lock()
			before := f.keys.generated
			f.keys.mu.Unlock()
			now := time.Now()
			for i := range 3 {
				if _, err := units.Renew(t.Context(), now.Add(time.Duration(i)*time.Second), "thiqa-serve"); err == nil {
					t.Fatal("renewed while the CA is down")
				}
			}
			next, err := units.Renew(t.Context(), now.Add(3*time.Second), "thiqa-serve")
			if err != nil {
				t.Fatal(err)
			}
			f.keys.mu.Lock()
			generated := f.keys.generated - before
			f.keys.mu.Unlock()
			if generated != 1 {
				t.Fatalf("%d keys generated for one renewal retried 3 times, want 1", generated)
			}
			if pubEqual(next.Cert.PublicKey, first.Cert.PublicKey) {
				t.Fatal("the renewed unit has the old unit's key")
			}
			if !pubEqual(next.Key.Signer.Public(), next.Cert.PublicKey) {
				t.Fatal("the renewed unit's certificate is not for its key")
			}
			// The next renewal makes a new key again.
			again, err := units.Renew(t.Context(), now.Add(4*time.Second), "thiqa-serve")
			if err != nil {
				t.Fatal(err)
			}
			if pubEqual(again.Cert.PublicKey, next.Cert.PublicKey) {
				t.Fatal("a renewal after a successful one reused its key")
			}
		})
	}
}
