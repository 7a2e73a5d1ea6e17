package ca

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/thiqa/thiqa/policies"
)

// TestCertifyIssuingCAFromCSR: the root certifies an issuing CA from the
// request made with the CA's key; the certificate carries the EN 319 412-1
// / RFC 5280 CA profile, the CSR's subject and the root's URLs, chains to
// the root and passed the lints.
func TestCertifyIssuingCAFromCSR(t *testing.T) {
	pki := newTestPKI(t, func(t testing.TB) crypto.Signer { return p384(t) })
	key := p384(t)
	csr, err := CreateIssuingCARequest(key, IssuingCAConfig{Name: "citizen", CommonName: "Thiqa Citizen CA G2",
		Organization: "Thiqa Test", OrganizationIdentifier: "NTROM-0000000", Country: "OM"})
	if err != nil {
		t.Fatal(err)
	}
	profiles, _ := policies.DefaultProfiles(policies.DefaultsConfig{})
	pols := IssuingCAPolicies(profiles, "citizen")
	c, err := CertifyIssuingCA(pki.root, pki.rootKey, IssuingCARequest{CSR: csr, BaseURL: "http://pki.example.om/", Policies: pols,
		Validity: 10 * 365 * 24 * time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.CheckSignatureFrom(pki.root); err != nil {
		t.Fatal(err)
	}
	if !c.IsCA || c.MaxPathLen != 0 || !c.MaxPathLenZero || c.KeyUsage != x509.KeyUsageCertSign|x509.KeyUsageCRLSign {
		t.Fatalf("CA profile: isCA %v pathLen %d keyUsage %b", c.IsCA, c.MaxPathLen, c.KeyUsage)
	}
	if c.Subject.CommonName != "Thiqa Citizen CA G2" || c.Subject.Country[0] != "OM" || !publicKeysEqual(c.PublicKey, key.Public()) {
		t.Fatalf("subject or key: %s", c.Subject)
	}
	if !slices.Equal(c.IssuingCertificateURL, []string{"http://pki.example.om/certs/root.crt"}) ||
		!slices.Equal(c.CRLDistributionPoints, []string{"http://pki.example.om/crl/root.crl"}) {
		t.Fatalf("URLs: %v %v", c.IssuingCertificateURL, c.CRLDistributionPoints)
	}
	if len(c.Policies) != len(pols) || string(c.AuthorityKeyId) != string(pki.root.SubjectKeyId) || len(c.SubjectKeyId) == 0 {
		t.Fatalf("policies %v, AKI %x (root SKI %x)", c.Policies, c.AuthorityKeyId, pki.root.SubjectKeyId)
	}
	// A CA certified once is refused a second certificate for the same key.
	h, _ := SPKIHash(key.Public())
	_, err = CertifyIssuingCA(pki.root, pki.rootKey, IssuingCARequest{CSR: csr, BaseURL: testBaseURL, Policies: pols,
		Validity: time.Hour, InUse: map[[32]byte]string{h: "issuing CA citizen"}})
	var inUse *KeyInUseError
	if !errors.As(err, &inUse) || inUse.Holder != "issuing CA citizen" {
		t.Fatalf("key already a CA: %v", err)
	}
	// pathLen 1 and a notAfter past the root's (cut to the root's).
	c, err = CertifyIssuingCA(pki.root, pki.rootKey, IssuingCARequest{CSR: csr, BaseURL: testBaseURL, Policies: pols, PathLen: 1,
		NotAfter: pki.root.NotAfter.Add(24 * time.Hour)})
	if err != nil || c.MaxPathLen != 1 || !c.NotAfter.Equal(pki.root.NotAfter) {
		t.Fatalf("pathLen 1: %v %d %s", err, c.MaxPathLen, c.NotAfter)
	}
}

func TestCertifyIssuingCARefusals(t *testing.T) {
	pki := newTestPKI(t, func(t testing.TB) crypto.Signer { return p384(t) })
	req := func(csr []byte) IssuingCARequest {
		return IssuingCARequest{CSR: csr, BaseURL: testBaseURL, Policies: []string{"1.3.6.1.4.1.99999.1"}, Validity: time.Hour}
	}
	caCSR := func(t *testing.T, key crypto.Signer, subject pkix.Name) []byte {
		der, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{Subject: subject}, key)
		if err != nil {
			t.Fatal(err)
		}
		return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: der})
	}
	good := pkix.Name{CommonName: "CA", Country: []string{"OM"}}
	p521, _ := ecdsa.GenerateKey(elliptic.P521(), rand.Reader)
	broken := caCSR(t, p384(t), good)
	blk, _ := pem.Decode(broken)
	blk.Bytes[len(blk.Bytes)-3] ^= 0xff
	for _, tc := range []struct {
		name string
		csr  []byte
		mod  func(*IssuingCARequest)
		is   func(error) bool
	}{
		{"root's own key", caCSR(t, pki.rootKey, good), nil, func(err error) bool { var e *KeyInUseError; return errors.As(err, &e) }},
		{"bad signature", pem.EncodeToMemory(blk), nil, func(err error) bool { return errors.Is(err, ErrBadCSR) }},
		{"not a CSR", []byte("hello"), nil, func(err error) bool { return errors.Is(err, ErrBadCSR) }},
		{"P-521 key", caCSR(t, p521, good), nil, func(err error) bool { var e *WeakKeyError; return errors.As(err, &e) }},
		{"no country", caCSR(t, p384(t), pkix.Name{CommonName: "CA"}), nil, func(err error) bool { var e *RequestError; return errors.As(err, &e) }},
		{"no policy", caCSR(t, p384(t), good), func(r *IssuingCARequest) { r.Policies = nil }, func(err error) bool { var e *RequestError; return errors.As(err, &e) }},
		{"ftp base URL", caCSR(t, p384(t), good), func(r *IssuingCARequest) { r.BaseURL = "ftp://x" }, func(err error) bool { var e *RequestError; return errors.As(err, &e) }},
		{"path length 9", caCSR(t, p384(t), good), func(r *IssuingCARequest) { r.PathLen = 9 }, func(err error) bool { var e *RequestError; return errors.As(err, &e) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := req(tc.csr)
			if tc.mod != nil {
				tc.mod(&r)
			}
			c, err := CertifyIssuingCA(pki.root, pki.rootKey, r)
			if c != nil || !tc.is(err) {
				t.Fatalf("got %v, %v", c, err)
			}
		})
	}
	// The wrong root key signs nothing.
	csr := caCSR(t, p384(t), good)
	if _, err := CertifyIssuingCA(pki.root, p384(t), req(csr)); err == nil {
		t.Fatal("a root signer that does not match the root certificate was accepted")
	}
}
