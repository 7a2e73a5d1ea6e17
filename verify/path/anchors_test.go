package path

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"fmt"
	"math/big"
	"testing"
	"time"
)

// manyAnchors returns n self-signed CA certificates with distinct names
// sharing one key (only their names matter here), and a leaf issued by
// the last one, whose issuer name differs from it in case and spacing.
func manyAnchors(t testing.TB, n int) ([]*x509.Certificate, *x509.Certificate) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	var roots []*x509.Certificate
	for i := range n {
		tmpl := &x509.Certificate{SerialNumber: big.NewInt(int64(i + 1)), Subject: pkix.Name{CommonName: fmt.Sprintf("Trusted List CA %d", i), Country: []string{"EU"}},
			NotBefore: now.Add(-time.Hour), NotAfter: now.Add(time.Hour), IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
		if err != nil {
			t.Fatal(err)
		}
		c, _ := x509.ParseCertificate(der)
		roots = append(roots, c)
	}
	issuer := *roots[n-1]
	issuer.RawSubject = mustName(t, atv(oidC, "eu"), atv(oidCN, fmt.Sprintf("  TRUSTED list ca   %d", n-1)))
	issuer.Subject = pkix.Name{}
	leafTmpl := &x509.Certificate{SerialNumber: big.NewInt(99999), Subject: pkix.Name{CommonName: "Signer"}, NotBefore: now.Add(-time.Hour), NotAfter: now.Add(time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature}
	der, err := x509.CreateCertificate(rand.Reader, leafTmpl, &issuer, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	leaf, _ := x509.ParseCertificate(der)
	return roots, leaf
}

// TestAnchorIndex checks that the index finds the anchors nameEqual would
// (case and spacing folded), with thousands of anchors.
func TestAnchorIndex(t *testing.T) {
	roots, leaf := manyAnchors(t, 3000)
	ix := NewAnchorIndex(append(roots, roots[5])) // a duplicate is indexed once
	if ix.Len() != 3000 || !ix.contains(roots[17]) || ix.contains(leaf) {
		t.Fatalf("index: %d anchors", ix.Len())
	}
	got := ix.issuersOf(leaf.RawIssuer, newNameMemo())
	if len(got) != 1 || got[0] != roots[2999] {
		t.Fatalf("issuersOf the leaf: %d anchors", len(got))
	}
	res, err := New(Options{Roots: roots, Anchors: ix}).Validate(leaf)
	if err != nil || len(res.Chain) != 2 || res.Chain[0] != roots[2999] {
		t.Fatalf("Validate with 3000 anchors: %v", err)
	}
}

// BenchmarkManyAnchors validates one path against 3000 anchors (a trusted
// list's worth), the index built once.
func BenchmarkManyAnchors(b *testing.B) {
	roots, leaf := manyAnchors(b, 3000)
	ix := NewAnchorIndex(roots)
	alg := DefaultAlgorithms()
	alg.Cache = NewSignatureCache(16)
	for b.Loop() {
		if _, err := New(Options{Roots: roots, Anchors: ix, Algorithms: &alg}).Validate(leaf); err != nil {
			b.Fatal(err)
		}
	}
}
