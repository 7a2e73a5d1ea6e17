package ocsp

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"math/big"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

type pki struct {
	root, ca       *x509.Certificate
	rootKey, caKey crypto.Signer
}

func mustCert(t testing.TB, tmpl, parent *x509.Certificate, pub crypto.PublicKey, key crypto.Signer) *x509.Certificate {
	t.Helper()
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, pub, key)
	if err != nil {
		t.Fatal(err)
	}
	c, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func newPKI(t testing.TB, name string) *pki {
	t.Helper()
	rootKey, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	caKey, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	nb := time.Now().Add(-time.Hour)
	rt := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{Country: []string{"OM"}, CommonName: name + " Root"},
		NotBefore: nb, NotAfter: nb.AddDate(10, 0, 0), IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageCRLSign}
	root := mustCert(t, rt, rt, rootKey.Public(), rootKey)
	ct := &x509.Certificate{SerialNumber: big.NewInt(2), Subject: pkix.Name{Country: []string{"OM"}, CommonName: name + " Citizen CA"},
		NotBefore: nb, NotAfter: nb.AddDate(5, 0, 0), IsCA: true, BasicConstraintsValid: true, MaxPathLenZero: true,
		KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageCRLSign}
	return &pki{root: root, ca: mustCert(t, ct, root, caKey.Public(), rootKey), rootKey: rootKey, caKey: caKey}
}

var oidOCSPNoCheck = asn1.ObjectIdentifier{1, 3, 6, 1, 5, 5, 7, 48, 1, 5}

// responder issues a delegated responder certificate valid for d.
func (p *pki) responder(t testing.TB, d time.Duration) ResponderCert {
	t.Helper()
	k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	nb := time.Now().Add(-time.Minute)
	serial, _ := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 64))
	tmpl := &x509.Certificate{SerialNumber: serial, Subject: pkix.Name{Country: []string{"OM"}, CommonName: "OCSP Responder"},
		NotBefore: nb, NotAfter: nb.Add(d), KeyUsage: x509.KeyUsageDigitalSignature,
		ExtKeyUsage:     []x509.ExtKeyUsage{x509.ExtKeyUsageOCSPSigning},
		ExtraExtensions: []pkix.Extension{{Id: oidOCSPNoCheck, Value: []byte{0x05, 0x00}}}}
	return ResponderCert{Cert: mustCert(t, tmpl, p.ca, k.Public(), p.caKey), Signer: k}
}

func (p *pki) leaf(t testing.TB, serial int64) *x509.Certificate {
	t.Helper()
	k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	nb := time.Now().Add(-time.Hour)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(serial), Subject: pkix.Name{Country: []string{"OM"}, CommonName: "Citizen"},
		NotBefore: nb, NotAfter: nb.AddDate(1, 0, 0), KeyUsage: x509.KeyUsageDigitalSignature,
		OCSPServer: []string{"http://127.0.0.1/ocsp"}}
	return mustCert(t, tmpl, p.ca, k.Public(), p.caKey)
}

// memStatus is an in-memory StatusSource.
type memStatus struct {
	mu sync.Mutex
	m  map[string]map[string]Status // issuer -> serial text -> status
}

func (s *memStatus) set(issuer string, serial int64, st Status) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.m == nil {
		s.m = map[string]map[string]Status{}
	}
	if s.m[issuer] == nil {
		s.m[issuer] = map[string]Status{}
	}
	s.m[issuer][big.NewInt(serial).String()] = st
}

func (s *memStatus) Status(_ context.Context, issuer string, serial *big.Int) (Status, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.m[issuer][serial.String()], nil
}

func (s *memStatus) AllStatuses(_ context.Context, issuer string, fn func(*big.Int, Status) error) error {
	s.mu.Lock()
	snapshot := map[string]Status{}
	for k, v := range s.m[issuer] {
		snapshot[k] = v
	}
	s.mu.Unlock()
	for k, v := range snapshot {
		n, _ := new(big.Int).SetString(k, 10)
		if err := fn(n, v); err != nil {
			return err
		}
	}
	return nil
}

func testSettings(t testing.TB) Settings {
	t.Helper()
	s, err := Config{}.Validate()
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// counter reads one sample of a counter vector from reg.
func counter(t testing.TB, reg *prometheus.Registry, name string, labels map[string]string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	next:
		for _, m := range mf.GetMetric() {
			for _, lp := range m.GetLabel() {
				if v, ok := labels[lp.GetName()]; ok && v != lp.GetValue() {
					continue next
				}
			}
			return metricValue(m)
		}
	}
	return 0
}

func metricValue(m *dto.Metric) float64 {
	if m.Counter != nil {
		return m.Counter.GetValue()
	}
	if m.Gauge != nil {
		return m.Gauge.GetValue()
	}
	return 0
}
