package timestamp

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/pem"
	"errors"
	"math/big"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// testPKI is an in-process hierarchy: root → TSA CA → unit certificate with
// EKU timeStamping (critical, alone).
type testPKI struct {
	root, ca, unit *x509.Certificate
	unitKey        crypto.Signer
}

func mustCert(t testing.TB, tmpl, parent *x509.Certificate, pub crypto.PublicKey, signer crypto.Signer) *x509.Certificate {
	t.Helper()
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, pub, signer)
	if err != nil {
		t.Fatal(err)
	}
	c, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func ekuExtension(t testing.TB, critical bool, ekus ...asn1.ObjectIdentifier) pkix.Extension {
	v, err := asn1.Marshal(ekus)
	if err != nil {
		t.Fatal(err)
	}
	return pkix.Extension{Id: asn1.ObjectIdentifier{2, 5, 29, 37}, Critical: critical, Value: v}
}

var oidTimeStampingEKU = asn1.ObjectIdentifier{1, 3, 6, 1, 5, 5, 7, 3, 8}

// newTestPKI builds the hierarchy; unitKey nil means a fresh P-256 key.
func newTestPKI(t testing.TB, unitKey crypto.Signer, unitExt ...pkix.Extension) *testPKI {
	t.Helper()
	now := time.Now()
	rootKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	caKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if unitKey == nil {
		unitKey, _ = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	}
	rootT := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "Thiqa Test Root", Country: []string{"OM"}},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(10 * 365 * 24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
	}
	root := mustCert(t, rootT, rootT, rootKey.Public(), rootKey)
	caT := &x509.Certificate{
		SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "Thiqa Test TSA CA", Country: []string{"OM"}},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(5 * 365 * 24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, MaxPathLenZero: true, KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
	}
	ca := mustCert(t, caT, root, caKey.Public(), rootKey)
	if len(unitExt) == 0 {
		unitExt = []pkix.Extension{ekuExtension(t, true, oidTimeStampingEKU)}
	}
	unitT := &x509.Certificate{
		SerialNumber: big.NewInt(3), Subject: pkix.Name{CommonName: "Thiqa Test TSA Unit 1", Organization: []string{"Thiqa"}, Country: []string{"OM"}},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(365 * 24 * time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtraExtensions: unitExt,
	}
	unit := mustCert(t, unitT, ca, unitKey.Public(), caKey)
	return &testPKI{root: root, ca: ca, unit: unit, unitKey: unitKey}
}

func rsaKey(t testing.TB) crypto.Signer {
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func writePEM(t testing.TB, path string, certs ...*x509.Certificate) string {
	t.Helper()
	var out []byte
	for _, c := range certs {
		out = append(out, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Raw})...)
	}
	if err := os.WriteFile(path, out, 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// memBlockStore is an in-memory SerialBlockStore (tests only).
type memBlockStore struct {
	mu       sync.Mutex
	next     map[string]int64
	reserves int
	fail     bool
}

func (s *memBlockStore) ReserveBlock(_ context.Context, name string, size int64) (int64, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.fail {
		return 0, errors.New("store down")
	}
	if s.next == nil {
		s.next = map[string]int64{}
	}
	if s.next[name] == 0 {
		s.next[name] = 1
	}
	first := s.next[name]
	s.next[name] += size
	s.reserves++
	return first, nil
}

// countingAllocator counts serials handed out.
type countingAllocator struct {
	inner SerialAllocator
	n     atomic.Int64
}

func (c *countingAllocator) Next(ctx context.Context) (*big.Int, error) {
	c.n.Add(1)
	return c.inner.Next(ctx)
}

// memRecorder keeps records in memory; fail makes Record fail.
type memRecorder struct {
	mu   sync.Mutex
	recs []TokenRecord
	fail atomic.Bool
}

func (r *memRecorder) Record(_ context.Context, rec TokenRecord) error {
	if r.fail.Load() {
		return errors.New("audit log unavailable")
	}
	r.mu.Lock()
	r.recs = append(r.recs, rec)
	r.mu.Unlock()
	return nil
}

func (r *memRecorder) count() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.recs)
}

// testTSA bundles an Authority with its test parts.
type testTSA struct {
	*Authority
	pki      *testPKI
	serials  *countingAllocator
	recorder *memRecorder
	clock    *StaticChecker
	reg      *prometheus.Registry
}

func newTestTSA(t testing.TB, cfg Config, pki *testPKI) *testTSA {
	t.Helper()
	if pki == nil {
		pki = newTestPKI(t, nil)
	}
	ba, err := NewBlockAllocator(&memBlockStore{}, "tsa-test", 100)
	if err != nil {
		t.Fatal(err)
	}
	tt := &testTSA{pki: pki, serials: &countingAllocator{inner: ba}, recorder: &memRecorder{}, clock: NewStaticChecker(true), reg: prometheus.NewRegistry()}
	a, err := New(cfg, Options{
		Certificate: pki.unit, Chain: []*x509.Certificate{pki.ca}, Signer: pki.unitKey,
		Serials: tt.serials, Recorder: tt.recorder, Clock: tt.clock, Registerer: tt.reg,
	})
	if err != nil {
		t.Fatal(err)
	}
	tt.Authority = a
	return tt
}

func tempFile(t testing.TB, name string, data []byte) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, data, 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}
