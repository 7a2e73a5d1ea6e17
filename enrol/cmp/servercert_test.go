package cmp

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"path/filepath"
	"slices"
	"testing"
)

func TestEnsureServerCertificateKeepsWhatExists(t *testing.T) {
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	path := filepath.Join(t.TempDir(), "certs", "cmp-server.pem")
	root := &x509.Certificate{Subject: pkix.Name{Organization: []string{"Agency"}, Country: []string{"OM"}}}
	cert, err := EnsureServerCertificate(path, key, root)
	if err != nil {
		t.Fatal(err)
	}
	if cert.Subject.CommonName != "Agency CMP server" || !slices.Equal(cert.Subject.Country, []string{"OM"}) ||
		cert.KeyUsage != x509.KeyUsageDigitalSignature || len(cert.UnknownExtKeyUsage) != 1 || !cert.UnknownExtKeyUsage[0].Equal(oidCMCRA) {
		t.Fatalf("certificate: subject %s, key usage %v, extended %v", cert.Subject, cert.KeyUsage, cert.UnknownExtKeyUsage)
	}
	again, err := EnsureServerCertificate(path, key, nil)
	if err != nil || !again.Equal(cert) {
		t.Fatalf("second call: %v (same certificate: %v)", err, again != nil && again.Equal(cert))
	}
	other, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if _, err := EnsureServerCertificate(path, other, nil); err == nil {
		t.Fatal("a certificate of another key was accepted")
	}
}
