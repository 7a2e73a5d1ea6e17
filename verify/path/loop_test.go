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

// TestCrossSignedCycleResolvesAtAnchor recreates the trust graph of
// CVE-2024-0567 (limbo cve::cve-2024-0567): leaf -> A1 -> A, where A, B and
// C all cross-certify one another (B and C also have subordinates B1, C1)
// and A is a self-signed trust anchor. The cycle must not stop the builder
// from finding anchor -> A1 -> leaf.
func TestCrossSignedCycleResolvesAtAnchor(t *testing.T) {
	nb, na := time.Now().Add(-time.Hour), time.Now().Add(time.Hour)
	keys := map[string]*ecdsa.PrivateKey{}
	for _, n := range []string{"Root A", "Root B", "Root C"} {
		k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		keys[n] = k
	}
	// Each CA's self-signed certificate; the keys are shared with its
	// cross-certificates, so key identifiers match across them.
	self := map[string]*testCA{}
	for n, k := range keys {
		self[n] = issueKey(t, nil, caTemplate(n, nb, na), k)
	}
	rootA := self["Root A"]
	var pool []*x509.Certificate
	for _, sub := range []string{"Root A", "Root B", "Root C"} {
		for _, iss := range []string{"Root A", "Root B", "Root C"} {
			if sub != iss {
				pool = append(pool, issueKey(t, self[iss], caTemplate(sub, nb, na), keys[sub]).cert)
			}
		}
	}
	pool = append(pool, issue(t, self["Root B"], caTemplate("Intermediate B1", nb, na)).cert,
		issue(t, self["Root C"], caTemplate("Intermediate C1", nb, na)).cert)
	a1 := issue(t, rootA, caTemplate("Intermediate A1", nb, na))
	pool = append(pool, a1.cert)
	leaf := issue(t, a1, leafTemplate("leaf", nb, na))

	res, err := New(Options{Roots: []*x509.Certificate{rootA.cert}, Intermediates: pool, Strict: true}).Validate(leaf.cert)
	if err != nil {
		t.Fatalf("cross-signed cycle: %v", err)
	}
	if len(res.Chain) != 3 || !res.Chain[0].Equal(rootA.cert) || !res.Chain[1].Equal(a1.cert) {
		var names []string
		for _, c := range res.Chain {
			names = append(names, c.Subject.CommonName)
		}
		t.Fatalf("chain %v, want Root A, Intermediate A1, leaf", names)
	}
}
