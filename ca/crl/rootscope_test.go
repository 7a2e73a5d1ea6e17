package crl

import (
	"context"
	"crypto/rand"
	"crypto/x509"
	"math/big"
	"strings"
	"testing"
	"time"
)

// TestRootCRLWholeChainOpenSSL checks a chain with openssl verify
// -crl_check_all (what nginx's ssl_crl does): the root's CRL and the
// issuing CA's CRL for a citizen certificate. OpenSSL checks the root
// certificate too; it has no CRL distribution point, so a root CRL whose
// issuingDistributionPoint names one is out of its scope and every chain
// failed ("different CRL scope"). The issuing CA's CRL still names its
// own distribution point; a revoked issuing CA is still caught.
func TestRootCRLWholeChainOpenSSL(t *testing.T) {
	h := newHierarchy(t)
	set := settings(t, 1)
	tmpl := *h.ca
	tmpl.CRLDistributionPoints = []string{URL(set.BaseURL, "root", 0)}
	caDER, err := x509.CreateCertificate(rand.Reader, &tmpl, h.root, h.caKey.Public(), h.rootKey)
	if err != nil {
		t.Fatal(err)
	}
	h.ca, _ = x509.ParseCertificate(caDER)
	leaf := h.leaf(t, big.NewInt(0x4242), URL(set.BaseURL, "citizen", 0))
	ctx := context.Background()
	caGen, err := NewGenerator(set, Issuer{Name: "citizen", Cert: h.ca, Signer: h.caKey}, &memNumbers{}, &memRevoked{partitions: 1})
	if err != nil {
		t.Fatal(err)
	}
	caCRL, err := caGen.Generate(ctx, 0, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	rootPEM := writePEM(t, dir, "root.pem", "CERTIFICATE", h.root.Raw)
	caPEM := writePEM(t, dir, "ca.pem", "CERTIFICATE", h.ca.Raw)
	leafPEM := writePEM(t, dir, "leaf.pem", "CERTIFICATE", leaf.Raw)
	for _, tc := range []struct {
		name    string
		revoked []RevokedEntry
		want    string
	}{
		{"nothing revoked", nil, "leaf.pem: OK"},
		{"issuing CA revoked", []RevokedEntry{{Serial: h.ca.SerialNumber, RevokedAt: time.Now().Add(-time.Minute), Reason: ReasonCACompromise}}, "certificate revoked"},
	} {
		g, err := NewGenerator(set, Issuer{Name: "root", Cert: h.root, Signer: h.rootKey, CACerts: true}, &memNumbers{},
			&memRevoked{partitions: 1, entries: tc.revoked})
		if err != nil {
			t.Fatal(err)
		}
		rootCRL, err := g.Generate(ctx, 0, time.Now())
		if err != nil {
			t.Fatal(err)
		}
		crls := writePEM(t, dir, "crls.pem", "X509 CRL", rootCRL.DER, caCRL.DER)
		out := runOpenSSL(t, "verify", "-crl_check_all", "-CAfile", rootPEM, "-untrusted", caPEM, "-CRLfile", crls, leafPEM)
		if !strings.Contains(out, tc.want) {
			t.Errorf("%s: openssl verify -crl_check_all: %s", tc.name, out)
		}
	}
	text := runOpenSSL(t, "crl", "-inform", "DER", "-in", writeFile(t, dir, "citizen.crl", caCRL.DER), "-noout", "-text")
	if !strings.Contains(text, URL(set.BaseURL, "citizen", 0)) {
		t.Errorf("the issuing CA's CRL does not name its distribution point:\n%s", text)
	}
}
