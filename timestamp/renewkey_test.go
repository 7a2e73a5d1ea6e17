package timestamp_test

import (
	"context"
	"crypto"
	"crypto/x509"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/thiqa/thiqa/internal/audit"
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

// While the renewal of a revoked unit keeps failing (the CA down), the
// retries back off: they do not write a failure record to the audit log
// every few seconds on every node for as long as the outage lasts.
func TestRevokedUnitRenewalFailuresBackOff(t *testing.T) {
	for _, d := range storetest.Dialects() {
		t.Run(d.Name, func(t *testing.T) {
			f := newFixture(t, d)
			first, err := f.units.Init(t.Context(), "thiqa-init")
			if err != nil {
				t.Fatal(err)
			}
			down := &downCertifier{inner: f.units.CA}
			down.fails.Store(1 << 30)
			units := &timestamp.Units{Dir: f.units.Dir, KeyLabel: f.units.KeyLabel, Keys: f.keys, CA: down}
			db := storetest.Open(t, f.cfg)
			serials, err := timestamp.NewBlockAllocator(db.SerialBlocks(), timestamp.SerialCounter, 0)
			if err != nil {
				t.Fatal(err)
			}
			in := &instance{db: db, serials: serials, clk: timestamp.NewStaticChecker(true), reg: prometheus.NewRegistry()}
			in.svc, err = timestamp.NewService(t.Context(), in.options(f, units, time.Hour))
			if err != nil {
				t.Fatal(err)
			}
			timestamp.SetRevokedRetry(in.svc, 20*time.Millisecond)
			ctx, cancel := context.WithCancel(t.Context())
			done := make(chan struct{})
			go func() { defer close(done); in.svc.RenewLoop(ctx, time.Hour) }()
			if !in.svc.Revoked(first.Cert.SerialNumber) {
				t.Fatal("the unit in use was not found revoked")
			}
			time.Sleep(800 * time.Millisecond)
			cancel()
			<-done
			// 20 ms apart: about 40 tries; backing off (20, 40, 80, … ms): 6.
			n := storetest.AuditCount(t, f.db, timestamp.ActionRenewUnit, audit.OutcomeFailure)
			if n < 2 || n > 10 {
				t.Fatalf("%d failed renewals audited in 800 ms with retries from 20 ms, want 2 to 10 (backing off)", n)
			}
		})
	}
}
