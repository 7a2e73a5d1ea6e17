package hierarchy

import (
	"context"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"errors"
	"io"
	"math/big"
	"os"
	"strings"
	"testing"
	"time"
)

// reshapeNoCountry has the root certify the CSR file as a foreign root
// adopted by the country may: its subject without C (commonName and O
// only).
func (w *subjectWorld) reshapeNoCountry(t *testing.T, csrPath string) *x509.Certificate {
	t.Helper()
	csr, err := readCSR(&generation{name: "citizen", csrPath: csrPath})
	if err != nil {
		t.Fatal(err)
	}
	subject, err := asn1.Marshal(pkix.RDNSequence{
		{{Type: asn1.ObjectIdentifier{2, 5, 4, 3}, Value: csr.Subject.CommonName}},
		{{Type: asn1.ObjectIdentifier{2, 5, 4, 10}, Value: csr.Subject.Organization[0]}},
	})
	if err != nil {
		t.Fatal(err)
	}
	anyPolicy, _ := x509.ParseOID(oidAnyPolicy)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(time.Now().UnixNano()), RawSubject: subject, NotBefore: time.Now().Add(-time.Minute),
		NotAfter: time.Now().Add(365 * 24 * time.Hour), IsCA: true, BasicConstraintsValid: true, MaxPathLenZero: true,
		KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageCRLSign, Policies: []x509.OID{anyPolicy}, CRLDistributionPoints: []string{w.c.BaseURL + "/crl/root.crl"}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, w.root.Cert, csr.PublicKey, w.root.Key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return cert
}

// TestRolloverRootOmitsCountry: a root that leaves C out of the issuing
// CA's certificate (the CSR asked for C=OM). thiqa ca rollover with
// thiqa.yaml as it was goes on and the second generation, shaped the same
// way, is installed: the rollover was refused ("thiqa.yaml names C=OM,
// but the certificate of its current generation names no C") and the
// advice, to remove the country from thiqa.yaml, would have made the
// deployment's country and the CSRs' subjects lose it. The country is
// then compared with what the current generation's CSR asked for: an
// edited country is still refused; without that CSR there is nothing to
// compare it with.
func TestRolloverRootOmitsCountry(t *testing.T) {
	ctx := context.Background()
	w := newSubjectWorld(t, nil, (*subjectWorld).reshapeNoCountry)
	c := w.c

	edited := c
	edited.Issuers = []CA{c.Issuers[0]}
	edited.Issuers[0].Country = "AE"
	log := &memAudit{}
	err := Rollover(ctx, edited, w.tok, log, "citizen", "cli:test", io.Discard)
	var change *SubjectChangeError
	if !errors.As(err, &change) || change.Attribute != "C" || !change.CurrentIsCSR ||
		!strings.Contains(err.Error(), "set country of CA citizen in thiqa.yaml (ca.issuers) to OM") {
		t.Fatalf("rollover with the country edited, generation 1 without C: %v", err)
	}
	if _, ok := w.tok.keys["citizen-ca-2"]; ok || len(log.actions) != 0 {
		t.Fatalf("a refused rollover generated a key (%v) or recorded %v", ok, log.actions)
	}

	if err := Rollover(ctx, c, w.tok, &memAudit{}, "citizen", "cli:test", io.Discard); err != nil {
		t.Fatalf("rollover with thiqa.yaml as it was, generation 1 certified without C: %v", err)
	}
	if err := Import(ctx, c, w.tok, &memAudit{}, "citizen", w.reshapeNoCountry(t, c.CertDir+"/citizen_2.csr"), w.root.Cert, "cli:test", io.Discard); err != nil {
		t.Fatalf("import of generation 2 certified without C, as generation 1: %v", err)
	}

	// thiqa config check's warning does not advise removing the country.
	checked := c
	checked.Country = c.Issuers[0].Country // as cmd/thiqa sets it: the citizen CA's
	mismatches := CountryMismatches(checked)
	if len(mismatches) == 0 {
		t.Fatalf("no warning for certificates without C (country %q)", checked.Country)
	}
	for _, m := range mismatches {
		if s := m.String(); strings.Contains(s, "make the CA's country in thiqa.yaml the certificate's C") || !strings.Contains(s, "keep it there") {
			t.Errorf("warning for a certificate without C: %q", s)
		}
	}

	// Without the current generation's CSR: nothing says which country
	// was asked for; the rollover goes on.
	if err := os.Rename(c.CertDir+"/citizen_2.csr", c.CertDir+"/citizen_2.csr.kept"); err != nil {
		t.Fatal(err)
	}
	if err := Rollover(ctx, c, w.tok, &memAudit{}, "citizen", "cli:test", io.Discard); err != nil {
		t.Fatalf("rollover without the current generation's CSR, its certificate without C: %v", err)
	}
}
