package crl

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"
)

// hierarchy is an in-process root and issuing CA.
type hierarchy struct {
	root, ca       *x509.Certificate
	rootKey, caKey crypto.Signer
}

func newHierarchy(t testing.TB) *hierarchy {
	t.Helper()
	rootKey, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	caKey, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	now := time.Now().Add(-time.Hour)
	rootTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{Country: []string{"OM"}, Organization: []string{"Thiqa Test"}, CommonName: "Thiqa Test Root"},
		NotBefore: now, NotAfter: now.AddDate(10, 0, 0), IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
	}
	rootDER, err := x509.CreateCertificate(rand.Reader, rootTmpl, rootTmpl, rootKey.Public(), rootKey)
	if err != nil {
		t.Fatal(err)
	}
	root, _ := x509.ParseCertificate(rootDER)
	caTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(2), Subject: pkix.Name{Country: []string{"OM"}, Organization: []string{"Thiqa Test"}, CommonName: "Thiqa Test Citizen CA"},
		NotBefore: now, NotAfter: now.AddDate(5, 0, 0), IsCA: true, BasicConstraintsValid: true, MaxPathLenZero: true,
		KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, root, caKey.Public(), rootKey)
	if err != nil {
		t.Fatal(err)
	}
	ca, _ := x509.ParseCertificate(caDER)
	return &hierarchy{root: root, ca: ca, rootKey: rootKey, caKey: caKey}
}

// leaf issues an end-entity certificate with the given CRL distribution point.
func (h *hierarchy) leaf(t testing.TB, serial *big.Int, crlDP string) *x509.Certificate {
	t.Helper()
	k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	now := time.Now().Add(-time.Hour)
	tmpl := &x509.Certificate{
		SerialNumber: serial, Subject: pkix.Name{Country: []string{"OM"}, CommonName: "Test Citizen " + serial.Text(16)},
		NotBefore: now, NotAfter: now.AddDate(1, 0, 0), KeyUsage: x509.KeyUsageDigitalSignature,
		CRLDistributionPoints: []string{crlDP},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, h.ca, k.Public(), h.caKey)
	if err != nil {
		t.Fatal(err)
	}
	c, _ := x509.ParseCertificate(der)
	return c
}

func writePEM(t testing.TB, dir, name, typ string, ders ...[]byte) string {
	t.Helper()
	var out []byte
	for _, d := range ders {
		out = append(out, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: d})...)
	}
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, out, 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// memNumbers is an in-memory NumberSource.
type memNumbers struct {
	mu   sync.Mutex
	last map[string]int64
}

func (m *memNumbers) NextCRLNumber(_ context.Context, issuer string) (*big.Int, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.last == nil {
		m.last = map[string]int64{}
	}
	m.last[issuer]++
	return big.NewInt(m.last[issuer]), nil
}

// memRevoked is an in-memory RevokedSource holding entries of any partition.
type memRevoked struct {
	partitions int
	entries    []RevokedEntry
}

func (m *memRevoked) RevokedCertificates(_ context.Context, _ string, partition int, fn func(RevokedEntry) error) error {
	for _, e := range m.entries {
		if Partition(e.Serial, m.partitions) != partition {
			continue
		}
		if err := fn(e); err != nil {
			return err
		}
	}
	return nil
}

// synthRevoked streams n synthetic entries without holding them.
type synthRevoked struct {
	n, partitions int
}

func (s synthRevoked) RevokedCertificates(ctx context.Context, _ string, partition int, fn func(RevokedEntry) error) error {
	at := time.Now().Add(-24 * time.Hour)
	serial := new(big.Int)
	base := new(big.Int).Lsh(big.NewInt(1), 120)
	for i := range s.n {
		serial.SetInt64(int64(i))
		serial.Add(serial, base)
		if s.partitions > 1 && Partition(serial, s.partitions) != partition {
			continue
		}
		if err := fn(RevokedEntry{Serial: serial, RevokedAt: at, Reason: i % 6}); err != nil {
			return err
		}
	}
	return nil
}

func settings(t testing.TB, partitions int) Settings {
	t.Helper()
	s, err := Config{Validity: 24 * time.Hour, RegenerateEvery: time.Hour, Partitions: PartitionCount(partitions),
		BaseURL: "http://pki.thiqa.test"}.Validate()
	if err != nil {
		t.Fatal(err)
	}
	return s
}
