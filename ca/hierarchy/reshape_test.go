package hierarchy

import (
	"bytes"
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

// reshape has the root certify the CSR file as an existing national root
// may: its subject shaped the root's way (commonName first, O rewritten to
// "Thiqa LLC" as a UTF8String, organizationIdentifier dropped, C last),
// anyPolicy.
func (w *subjectWorld) reshape(t *testing.T, csrPath string) *x509.Certificate {
	t.Helper()
	g := &generation{name: "citizen", csrPath: csrPath}
	csr, err := readCSR(g)
	if err != nil {
		t.Fatal(err)
	}
	utf8 := func(s string) asn1.RawValue { return asn1.RawValue{Tag: asn1.TagUTF8String, Bytes: []byte(s)} }
	subject, err := asn1.Marshal(pkix.RDNSequence{
		{{Type: asn1.ObjectIdentifier{2, 5, 4, 3}, Value: utf8(csr.Subject.CommonName)}},
		{{Type: asn1.ObjectIdentifier{2, 5, 4, 10}, Value: utf8("Thiqa LLC")}},
		{{Type: asn1.ObjectIdentifier{2, 5, 4, 6}, Value: csr.Subject.Country[0]}},
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

// TestRolloverExistingRootReshapes: an existing national root shaped the
// first generation's subject its own way (organizationIdentifier dropped,
// O rewritten, another order and string type). With thiqa.yaml as it was,
// thiqa ca rollover goes on and thiqa ca import installs the second
// generation the root shaped the same way, noting that its subject is not
// the CSR's; an edited country or organizationIdentifier is still
// refused. With the CSR of the current generation moved away, a rollover
// is compared with its certificate where both name an attribute: O is
// refused until thiqa.yaml names the certificate's, as the message says.
func TestRolloverExistingRootReshapes(t *testing.T) {
	ctx := context.Background()
	w := newSubjectWorld(t, func(c *CA) { c.OrganizationIdentifier = "NTROM-1234567" }, (*subjectWorld).reshape)
	c := w.c
	if err := Rollover(ctx, c, w.tok, &memAudit{}, "citizen", "cli:test", io.Discard); err != nil {
		t.Fatalf("rollover with thiqa.yaml as it was, generation 1 reshaped by the root: %v", err)
	}
	var out bytes.Buffer
	if err := Import(ctx, c, w.tok, &memAudit{}, "citizen", w.reshape(t, c.CertDir+"/citizen_2.csr"), w.root.Cert, "cli:test", &out); err != nil {
		t.Fatalf("import of generation 2 reshaped by the root as generation 1: %v", err)
	}
	if !strings.Contains(out.String(), "note: the certificate's subject") || !strings.Contains(out.String(), "the root shaped it its own way") {
		t.Fatalf("import of a reshaped generation 2 does not note it:\n%s", out.String())
	}

	for _, tc := range []struct {
		attr, file, advice string
		edit               func(*CA)
	}{
		{"C", "/citizen_2.pem", "set country of CA citizen in thiqa.yaml (ca.issuers) to OM", func(ca *CA) { ca.Country = "AE" }},
		{"organizationIdentifier", "/citizen_2.csr", "set organizationIdentifier of CA citizen in thiqa.yaml (ca.issuers) to NTROM-1234567",
			func(ca *CA) { ca.OrganizationIdentifier = "NTROM-1" }},
	} {
		edited := c
		edited.Issuers = []CA{c.Issuers[0]}
		tc.edit(&edited.Issuers[0])
		log := &memAudit{}
		err := Rollover(ctx, edited, w.tok, log, "citizen", "cli:test", io.Discard)
		var change *SubjectChangeError
		if !errors.As(err, &change) || change.Attribute != tc.attr || !strings.Contains(err.Error(), c.CertDir+tc.file) || !strings.Contains(err.Error(), tc.advice) {
			t.Fatalf("rollover with %s edited: %v", tc.attr, err)
		}
		if _, ok := w.tok.keys["citizen-ca-3"]; ok || len(log.actions) != 0 {
			t.Fatalf("a refused rollover generated a key (%v) or recorded %v", ok, log.actions)
		}
	}

	// The CSR gone: O=Thiqa in thiqa.yaml against O=Thiqa LLC in the
	// certificate; organizationIdentifier, which the certificate lacks,
	// is not compared.
	if err := os.Rename(c.CertDir+"/citizen_2.csr", c.CertDir+"/citizen_2.csr.kept"); err != nil {
		t.Fatal(err)
	}
	err := Rollover(ctx, c, w.tok, &memAudit{}, "citizen", "cli:test", io.Discard)
	var change *SubjectChangeError
	if !errors.As(err, &change) || change.Attribute != "O" || change.CurrentIsCSR ||
		!strings.Contains(err.Error(), "set organization of CA citizen in thiqa.yaml (ca.issuers) to Thiqa LLC") {
		t.Fatalf("rollover without the current generation's CSR, O rewritten by the root: %v", err)
	}
	c.Issuers = []CA{c.Issuers[0]}
	c.Issuers[0].Organization = "Thiqa LLC"
	if err := Rollover(ctx, c, w.tok, &memAudit{}, "citizen", "cli:test", io.Discard); err != nil {
		t.Fatalf("rollover after thiqa.yaml names the certificate's O: %v", err)
	}
}

// TestImportFirstGenerationAgain: generation 1's certificate moved away
// after generation 2 was installed (its key still on the token): a
// certificate for generation 1's key naming another country is refused,
// nothing installed; generation 1's own certificate goes back.
func TestImportFirstGenerationAgain(t *testing.T) {
	ctx := context.Background()
	w := newSubjectWorld(t, nil, nil)
	c := w.c
	if err := Rollover(ctx, c, w.tok, &memAudit{}, "citizen", "cli:test", io.Discard); err != nil {
		t.Fatal(err)
	}
	if err := Import(ctx, c, w.tok, &memAudit{}, "citizen", w.certify(t, c.CertDir+"/citizen_2.csr"), w.root.Cert, "cli:test", io.Discard); err != nil {
		t.Fatal(err)
	}
	gen1, err := readCert(c.CertDir + "/citizen.pem")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(c.CertDir + "/citizen.pem"); err != nil {
		t.Fatal(err)
	}
	edited := c.Issuers[0]
	edited.Country = "AE"
	g1, err := findGeneration(ctx, c, w.tok, edited, 1)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(g1.csrPath); err != nil {
		t.Fatal(err)
	}
	g1.hasCSR = false
	if err := writeCSR(ctx, &memAudit{}, g1, "cli:test"); err != nil {
		t.Fatal(err)
	}
	log := &memAudit{}
	err = Import(ctx, c, w.tok, log, "citizen", w.certify(t, g1.csrPath), w.root.Cert, "cli:test", io.Discard)
	var change *SubjectChangeError
	if !errors.As(err, &change) || change.Attribute != "C" || !strings.Contains(err.Error(), c.CertDir+"/citizen_2.pem names C=OM") {
		t.Fatalf("import of generation 1 again, C=AE, generation 2 C=OM: %v", err)
	}
	if _, err := os.Stat(g1.certPath); !errors.Is(err, os.ErrNotExist) || len(log.actions) != 0 {
		t.Fatalf("a refused import installed the certificate (%v) or recorded %v", err, log.actions)
	}
	if err := Import(ctx, c, w.tok, log, "citizen", gen1, w.root.Cert, "cli:test", io.Discard); err != nil {
		t.Fatalf("import of generation 1's own certificate again: %v", err)
	}
}

// TestImportCountrySpelledOtherwise: a certificate for generation 2 whose
// C is OM together with another C (in one multi-valued RDN) or "om" is
// refused as another country; "OM" as a UTF8String in another order is
// not.
func TestImportCountrySpelledOtherwise(t *testing.T) {
	ctx := context.Background()
	w := newSubjectWorld(t, nil, nil)
	c := w.c
	if err := Rollover(ctx, c, w.tok, &memAudit{}, "citizen", "cli:test", io.Discard); err != nil {
		t.Fatal(err)
	}
	csr, err := readCSR(&generation{name: "citizen_2", csrPath: c.CertDir + "/citizen_2.csr"})
	if err != nil {
		t.Fatal(err)
	}
	country, cn, o := asn1.ObjectIdentifier{2, 5, 4, 6}, asn1.ObjectIdentifier{2, 5, 4, 3}, asn1.ObjectIdentifier{2, 5, 4, 10}
	utf8 := func(s string) asn1.RawValue { return asn1.RawValue{Tag: asn1.TagUTF8String, Bytes: []byte(s)} }
	certFor := func(name pkix.RDNSequence) *x509.Certificate {
		subject, err := asn1.Marshal(name)
		if err != nil {
			t.Fatal(err)
		}
		anyPolicy, _ := x509.ParseOID(oidAnyPolicy)
		tmpl := &x509.Certificate{SerialNumber: big.NewInt(time.Now().UnixNano()), RawSubject: subject, NotBefore: time.Now().Add(-time.Minute),
			NotAfter: time.Now().Add(365 * 24 * time.Hour), IsCA: true, BasicConstraintsValid: true, MaxPathLenZero: true,
			KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageCRLSign, Policies: []x509.OID{anyPolicy}}
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
	for _, tc := range []struct {
		what string
		name pkix.RDNSequence
	}{
		{"C=OM+C=AE", pkix.RDNSequence{{{Type: country, Value: "OM"}, {Type: country, Value: "AE"}}, {{Type: o, Value: "Thiqa"}}, {{Type: cn, Value: "Test citizen G2"}}}},
		{"C=om", pkix.RDNSequence{{{Type: country, Value: "om"}}, {{Type: o, Value: "Thiqa"}}, {{Type: cn, Value: "Test citizen G2"}}}},
	} {
		log := &memAudit{}
		err := Import(ctx, c, w.tok, log, "citizen", certFor(tc.name), w.root.Cert, "cli:test", io.Discard)
		var change *SubjectChangeError
		if !errors.As(err, &change) || change.Attribute != "C" || len(log.actions) != 0 {
			t.Fatalf("import of generation 2 with %s: %v (recorded %v)", tc.what, err, log.actions)
		}
	}
	reordered := certFor(pkix.RDNSequence{{{Type: cn, Value: utf8("Test citizen G2")}}, {{Type: o, Value: utf8("Thiqa")}}, {{Type: country, Value: utf8("OM")}}})
	if err := Import(ctx, c, w.tok, &memAudit{}, "citizen", reordered, w.root.Cert, "cli:test", io.Discard); err != nil {
		t.Fatalf("import of generation 2 with its subject reordered and re-encoded: %v", err)
	}
}
