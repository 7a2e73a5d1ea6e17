package path

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"math/big"
	"testing"
	"time"
)

// TestCertificateLoop: two CAs that certify each other (and many
// cross-certificates) must give a verdict quickly, not loop.
func TestCertificateLoop(t *testing.T) {
	now := time.Now()
	keyA, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	keyB, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	mk := func(serial int64, subj, iss string, pub *ecdsa.PublicKey, signer *ecdsa.PrivateKey) *x509.Certificate {
		tmpl := &x509.Certificate{SerialNumber: big.NewInt(serial), Subject: pkix.Name{CommonName: subj},
			NotBefore: now.Add(-time.Hour), NotAfter: now.Add(time.Hour), IsCA: true, BasicConstraintsValid: true,
			KeyUsage: x509.KeyUsageCertSign}
		parent := &x509.Certificate{Subject: pkix.Name{CommonName: iss}}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, pub, signer)
		if err != nil {
			t.Fatal(err)
		}
		c, _ := x509.ParseCertificate(der)
		return c
	}
	var pool []*x509.Certificate
	for i := int64(0); i < 20; i++ {
		pool = append(pool, mk(100+i, "A", "B", &keyA.PublicKey, keyB), mk(200+i, "B", "A", &keyB.PublicKey, keyA))
	}
	leafKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	leafTmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "leaf"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(time.Hour)}
	der, _ := x509.CreateCertificate(rand.Reader, leafTmpl, &x509.Certificate{Subject: pkix.Name{CommonName: "A"}}, &leafKey.PublicKey, keyA)
	leaf, _ := x509.ParseCertificate(der)
	otherRootKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	root := mk(1, "Unrelated Root", "Unrelated Root", &otherRootKey.PublicKey, otherRootKey)
	start := time.Now()
	_, err := New(Options{Roots: []*x509.Certificate{root}, Intermediates: pool}).Validate(leaf)
	if err == nil {
		t.Fatal("a loop without an anchor validated")
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("took %v", d)
	}
}
