package revocation

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"errors"
	"math/big"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/thiqa/thiqa/ca"
	"github.com/thiqa/thiqa/internal/auth"
)

// memCerts is an in-memory Certificates that counts look-ups.
type memCerts struct {
	mu      sync.Mutex
	recs    map[string]*ca.CertificateRecord
	lookups int
	down    bool
}

func (m *memCerts) GetCertificate(_ context.Context, serial string) (*ca.CertificateRecord, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.lookups++
	if m.down {
		return nil, errors.New("database down")
	}
	r, ok := m.recs[serial]
	if !ok {
		return nil, ca.ErrNotFound
	}
	c := *r
	return &c, nil
}

func newCert(t *testing.T, serial int64, notBefore, notAfter time.Time) *x509.Certificate {
	t.Helper()
	k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(serial), Subject: pkix.Name{CommonName: "x"}, NotBefore: notBefore, NotAfter: notAfter}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &k.PublicKey, k)
	if err != nil {
		t.Fatal(err)
	}
	c, _ := x509.ParseCertificate(der)
	return c
}

func TestCheckerRule(t *testing.T) {
	now := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	clock := func() time.Time { return now }
	good := newCert(t, 0x0a01, now.Add(-time.Hour), now.Add(time.Hour))
	revoked := newCert(t, 0x0a02, now.Add(-time.Hour), now.Add(time.Hour))
	foreign := newCert(t, 0x0a03, now.Add(-time.Hour), now.Add(time.Hour))
	sameSerial := newCert(t, 0x0a01, now.Add(-time.Hour), now.Add(time.Hour))
	expired := newCert(t, 0x0a04, now.Add(-2*time.Hour), now.Add(-time.Hour))
	early := newCert(t, 0x0a05, now.Add(time.Hour), now.Add(2*time.Hour))
	blocked := newCert(t, 0x0a06, now.Add(-time.Hour), now.Add(time.Hour))
	store := &memCerts{recs: map[string]*ca.CertificateRecord{}}
	for _, c := range []*x509.Certificate{good, revoked, expired, early, blocked} {
		store.recs[hex.EncodeToString(c.SerialNumber.Bytes())] = &ca.CertificateRecord{CA: "citizen", Profile: "citizen-auth", DER: c.Raw}
	}
	rr := store.recs[hex.EncodeToString(revoked.SerialNumber.Bytes())]
	rr.Revoked, rr.RevokedAt, rr.RevocationReason = true, now.Add(-time.Minute), int(KeyCompromise)
	// Its key was reported compromised through another certificate, and
	// its own revocation is not recorded yet.
	store.recs[hex.EncodeToString(blocked.SerialNumber.Bytes())].KeyBlocked = true

	c := NewChecker(store, 0, clock)
	if err := c.Check(context.Background(), good); err != nil {
		t.Fatalf("good certificate: %v", err)
	}
	for name, tc := range map[string]struct {
		cert *x509.Certificate
		want string
	}{
		"revoked":       {revoked, "revoked (keyCompromise"},
		"foreign":       {foreign, "not issued by this deployment"},
		"same serial":   {sameSerial, "not issued by this deployment"},
		"expired":       {expired, "expired or not yet valid"},
		"not yet valid": {early, "expired or not yet valid"},
		"key blocked":   {blocked, "reported compromised"},
	} {
		err := c.Check(context.Background(), tc.cert)
		if !errors.Is(err, ErrRefused) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want a refusal saying %q", name, err, tc.want)
		}
	}
	st, err := c.Status(context.Background(), revoked)
	if err != nil || !st.Known || !st.Revoked || st.Reason != KeyCompromise || st.Profile != "citizen-auth" {
		t.Fatalf("status of the revoked certificate: %+v %v", st, err)
	}
	// Records that cannot be read refuse nothing: the caller decides.
	store.down = true
	if err := c.Check(context.Background(), good); err == nil || errors.Is(err, ErrRefused) {
		t.Fatalf("store down: %v, want an error that is not a refusal", err)
	}
}

// TestCheckerCacheBound: an answer is reused for at most maxAge, so a
// revocation recorded by any instance is seen within that bound.
func TestCheckerCacheBound(t *testing.T) {
	now := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	var mu sync.Mutex
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	advance := func(d time.Duration) { mu.Lock(); now = now.Add(d); mu.Unlock() }
	cert := newCert(t, 77, now.Add(-time.Hour), now.Add(time.Hour))
	key := hex.EncodeToString(cert.SerialNumber.Bytes())
	store := &memCerts{recs: map[string]*ca.CertificateRecord{key: {CA: "organisation", Profile: "organisation-seal", DER: cert.Raw}}}
	c := NewChecker(store, 2*time.Second, clock)
	for range 100 {
		if err := c.Check(context.Background(), cert); err != nil {
			t.Fatal(err)
		}
	}
	if store.lookups != 1 {
		t.Fatalf("%d look-ups for 100 checks within maxAge, want 1", store.lookups)
	}
	store.mu.Lock()
	store.recs[key].Revoked, store.recs[key].RevokedAt, store.recs[key].RevocationReason = true, now, int(Superseded)
	store.mu.Unlock()
	advance(time.Second)
	if err := c.Check(context.Background(), cert); err != nil {
		t.Fatalf("within maxAge the cached answer may stand: %v", err)
	}
	advance(time.Second + time.Millisecond)
	if err := c.Check(context.Background(), cert); !errors.Is(err, ErrRefused) {
		t.Fatalf("after maxAge the revocation must be seen: %v", err)
	}
	// A revocation this process records is seen at once (Forget).
	other := newCert(t, 78, now.Add(-time.Hour), now.Add(time.Hour))
	okey := hex.EncodeToString(other.SerialNumber.Bytes())
	store.mu.Lock()
	store.recs[okey] = &ca.CertificateRecord{CA: "organisation", Profile: "organisation-seal", DER: other.Raw}
	store.mu.Unlock()
	if err := c.Check(context.Background(), other); err != nil {
		t.Fatal(err)
	}
	store.mu.Lock()
	store.recs[okey].Revoked = true
	store.mu.Unlock()
	c.Forget(okey)
	if err := c.Check(context.Background(), other); !errors.Is(err, ErrRefused) {
		t.Fatalf("after Forget the revocation must be seen: %v", err)
	}
}

// pausedCerts is a Certificates whose first look-up reads the record, then
// waits for release before answering: a look-up under way while the
// certificate is revoked.
type pausedCerts struct {
	*memCerts
	read    chan struct{}
	release chan struct{}
	once    sync.Once
}

func (p *pausedCerts) GetCertificate(ctx context.Context, serial string) (*ca.CertificateRecord, error) {
	rec, err := p.memCerts.GetCertificate(ctx, serial)
	p.once.Do(func() {
		close(p.read)
		<-p.release
	})
	return rec, err
}

// A look-up that read the status before a revocation and answers after
// this process recorded it (Forget) must not leave the old answer cached:
// the revocation is seen at once, not maxAge later.
func TestCheckerForgetDuringLookUp(t *testing.T) {
	now := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	cert := newCert(t, 79, now.Add(-time.Hour), now.Add(time.Hour))
	key := hex.EncodeToString(cert.SerialNumber.Bytes())
	mem := &memCerts{recs: map[string]*ca.CertificateRecord{key: {CA: "organisation", Profile: "organisation-seal", DER: cert.Raw}}}
	store := &pausedCerts{memCerts: mem, read: make(chan struct{}), release: make(chan struct{})}
	c := NewChecker(store, time.Hour, func() time.Time { return now })
	done := make(chan error, 1)
	go func() { done <- c.Check(context.Background(), cert) }()
	<-store.read
	mem.mu.Lock()
	mem.recs[key].Revoked, mem.recs[key].RevokedAt, mem.recs[key].RevocationReason = true, now, int(KeyCompromise)
	mem.mu.Unlock()
	c.Forget(key)
	close(store.release)
	if err := <-done; err != nil {
		t.Fatalf("the check under way read the status before the revocation: %v", err)
	}
	if err := c.Check(context.Background(), cert); !errors.Is(err, ErrRefused) {
		t.Fatalf("after Forget the revocation must be seen, whatever look-up was under way: %v", err)
	}
}

func TestReasonNames(t *testing.T) {
	for _, n := range reasonNames {
		r, err := ParseReason(n.name)
		if err != nil || r != n.r || r.String() != n.name {
			t.Errorf("%s: %v %v %q", n.name, r, err, r.String())
		}
	}
	for _, bad := range []string{"", "certificateHold", "removeFromCRL", "KeyCompromise", "keycompromise"} {
		if _, err := ParseReason(bad); err == nil {
			t.Errorf("ParseReason(%q) accepted", bad)
		}
	}
	if s := Reason(6).String(); s != "reason-6" {
		t.Errorf("certificateHold prints %q", s)
	}
}

// A refused client certificate is an authentication refusal too; an
// unreadable store is neither.
func TestCheckClientChain(t *testing.T) {
	now := time.Now()
	good := newCert(t, 0x0b01, now.Add(-time.Hour), now.Add(time.Hour))
	foreign := newCert(t, 0x0b02, now.Add(-time.Hour), now.Add(time.Hour))
	store := &memCerts{recs: map[string]*ca.CertificateRecord{
		hex.EncodeToString(good.SerialNumber.Bytes()): {CA: "citizen", Profile: "citizen-auth", DER: good.Raw}}}
	c := NewChecker(store, 0, nil)
	if err := c.CheckClientChain(context.Background(), []*x509.Certificate{good}); err != nil {
		t.Fatalf("good certificate: %v", err)
	}
	err := c.CheckClientChain(context.Background(), []*x509.Certificate{foreign})
	if !errors.Is(err, auth.ErrCertificateRefused) || !errors.Is(err, ErrRefused) {
		t.Fatalf("foreign certificate: %v", err)
	}
	store.down = true
	if err := c.CheckClientChain(context.Background(), []*x509.Certificate{good}); err == nil || errors.Is(err, auth.ErrCertificateRefused) {
		t.Fatalf("store down: %v", err)
	}
}
