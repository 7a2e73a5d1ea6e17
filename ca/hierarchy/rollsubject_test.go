package hierarchy

import (
	"context"
	"crypto/x509"
	"errors"
	"io"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/thiqa/thiqa/ca"
	"github.com/thiqa/thiqa/policies"
)

// subjectWorld is an offline-root data folder whose citizen CA's first
// generation is installed (C=OM, O=Thiqa, unless edit changes the
// configuration), with the root the ceremony keeps (root).
type subjectWorld struct {
	c    Config
	tok  *memToken
	root *Part
}

// newSubjectWorld makes it: edit, when not nil, changes the citizen CA's
// configuration first; sign, when not nil, certifies the first
// generation's CSR instead of certify.
func newSubjectWorld(t *testing.T, edit func(*CA), sign func(*subjectWorld, *testing.T, string) *x509.Certificate) *subjectWorld {
	t.Helper()
	ctx := context.Background()
	dev := testConfig(t.TempDir())
	devTok := &memToken{keys: map[string]memKey{}}
	if err := Init(ctx, dev, devTok, &memAudit{}, io.Discard); err != nil {
		t.Fatal(err)
	}
	devParts, err := Find(ctx, dev, devTok)
	if err != nil {
		t.Fatal(err)
	}
	c, tok := testConfig(t.TempDir()), &memToken{keys: map[string]memKey{}}
	c.RootOffline, c.Root.Key, c.Root.KeyLabel = true, "", ""
	if edit != nil {
		edit(&c.Issuers[0])
	}
	if sign == nil {
		sign = (*subjectWorld).certify
	}
	if _, err := InstallRoot(c, devParts[0].Cert); err != nil {
		t.Fatal(err)
	}
	if err := Init(ctx, c, tok, &memAudit{}, io.Discard); !errors.Is(err, ErrPending) {
		t.Fatalf("InitOffline: %v", err)
	}
	w := &subjectWorld{c: c, tok: tok, root: devParts[0]}
	if err := Import(ctx, c, tok, &memAudit{}, "citizen", sign(w, t, c.CertDir+"/citizen.csr"), w.root.Cert, "cli:test", io.Discard); err != nil {
		t.Fatal(err)
	}
	return w
}

// certify has the root certify the CSR file as `thiqa ca sign` does (the
// CSR's subject as it is).
func (w *subjectWorld) certify(t *testing.T, csrPath string) *x509.Certificate {
	t.Helper()
	raw, err := os.ReadFile(csrPath)
	if err != nil {
		t.Fatal(err)
	}
	profiles, err := policies.DefaultProfiles(policies.DefaultsConfig{})
	if err != nil {
		t.Fatal(err)
	}
	cert, err := ca.CertifyIssuingCA(w.root.Cert, w.root.Key, ca.IssuingCARequest{CSR: raw, BaseURL: w.c.BaseURL,
		Policies: ca.IssuingCAPolicies(profiles, "citizen"), Validity: 365 * 24 * time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	return cert
}

// TestRolloverKeepsSubject: with thiqa.yaml's country, organisation or
// organizationIdentifier of the citizen CA edited since its first
// generation was certified, thiqa ca rollover refuses, naming the
// attribute and both values, before any key, record or CSR exists; a
// changed commonName is a rollover like any other (" G2" appended).
func TestRolloverKeepsSubject(t *testing.T) {
	ctx := context.Background()
	w := newSubjectWorld(t, nil, nil)
	for _, tc := range []struct {
		attr, want string
		edit       func(*CA)
	}{
		{"C", "C=AE", func(ca *CA) { ca.Country = "AE" }},
		{"O", "O=Other", func(ca *CA) { ca.Organization = "Other" }},
		{"organizationIdentifier", "organizationIdentifier=NTROM-1", func(ca *CA) { ca.OrganizationIdentifier = "NTROM-1" }},
	} {
		c := w.c
		c.Issuers = []CA{c.Issuers[0]}
		tc.edit(&c.Issuers[0])
		log := &memAudit{}
		err := Rollover(ctx, c, w.tok, log, "citizen", "cli:test", io.Discard)
		var change *SubjectChangeError
		if !errors.As(err, &change) || change.Attribute != tc.attr {
			t.Fatalf("rollover with %s edited: %v", tc.attr, err)
		}
		// C is compared with the certificate, O and organizationIdentifier
		// with the CSR it was certified from (what thiqa.yaml asked for).
		current, file, advice := "C=OM", c.CertDir+"/citizen.pem", "set country of CA citizen in thiqa.yaml (ca.issuers) to OM"
		switch tc.attr {
		case "O":
			current, file, advice = "O=Thiqa", c.CertDir+"/citizen.csr", "set organization of CA citizen in thiqa.yaml (ca.issuers) to Thiqa"
		case "organizationIdentifier":
			current, file, advice = "no organizationIdentifier", c.CertDir+"/citizen.csr", "remove organizationIdentifier from CA citizen in thiqa.yaml"
		}
		for _, s := range []string{tc.want, current, file, advice, "new CA, not a rollover", "docs/ceremony.md"} {
			if !strings.Contains(err.Error(), s) {
				t.Fatalf("rollover with %s edited: %q does not say %q", tc.attr, err, s)
			}
		}
		if _, ok := w.tok.keys["citizen-ca-2"]; ok || len(log.actions) != 0 {
			t.Fatalf("a refused rollover generated a key (%v) or recorded %v", ok, log.actions)
		}
		if _, err := os.Stat(c.CertDir + "/citizen_2.csr"); !errors.Is(err, os.ErrNotExist) {
			t.Fatalf("a refused rollover wrote a CSR: %v", err)
		}
	}

	// Another commonName: allowed, the CSR names the CA "… G2".
	c := w.c
	c.Issuers = []CA{c.Issuers[0]}
	c.Issuers[0].CommonName = "Renamed citizen"
	if err := Rollover(ctx, c, w.tok, &memAudit{}, "citizen", "cli:test", io.Discard); err != nil {
		t.Fatalf("rollover with another commonName: %v", err)
	}
	g2, err := findGeneration(ctx, c, w.tok, c.Issuers[0], 2)
	if err != nil {
		t.Fatal(err)
	}
	csr, err := readCSR(g2)
	if err != nil || csr.Subject.CommonName != "Renamed citizen G2" || csr.Subject.Country[0] != "OM" {
		t.Fatalf("the CSR of generation 2: %v %v", csr, err)
	}
	if err := Import(ctx, c, w.tok, &memAudit{}, "citizen", w.certify(t, g2.csrPath), w.root.Cert, "cli:test", io.Discard); err != nil {
		t.Fatalf("importing generation 2 with another commonName: %v", err)
	}
}

// TestWaitingCSRSubjectRefused: a CSR written for generation 2 from an
// edited thiqa.yaml before Rollover compared subjects (C=AE, generation 1
// is C=OM) is refused by the next rollover, nothing recorded; its
// certificate from the ceremony is refused by Import, nothing installed,
// as is a certificate whose subject is not its CSR's.
func TestWaitingCSRSubjectRefused(t *testing.T) {
	ctx := context.Background()
	w := newSubjectWorld(t, nil, nil)
	// What Rollover did before: the key, and the CSR from thiqa.yaml as it was.
	edited := w.c.Issuers[0]
	edited.Country = "AE"
	g2, err := findGeneration(ctx, w.c, w.tok, edited, 2)
	if err != nil {
		t.Fatal(err)
	}
	if g2.key, err = w.tok.GenerateKey(ctx, g2.label, edited.KeyType); err != nil {
		t.Fatal(err)
	}
	if err := writeCSR(ctx, &memAudit{}, g2, "cli:test"); err != nil {
		t.Fatal(err)
	}
	before, err := os.ReadFile(g2.csrPath)
	if err != nil {
		t.Fatal(err)
	}

	log := &memAudit{}
	err = Rollover(ctx, w.c, w.tok, log, "citizen", "cli:test", io.Discard)
	var change *SubjectChangeError
	if !errors.As(err, &change) || change.Attribute != "C" || !strings.Contains(err.Error(), g2.csrPath) ||
		!strings.Contains(err.Error(), "C=AE") || !strings.Contains(err.Error(), "C=OM") || !strings.Contains(err.Error(), "move the CSR away") {
		t.Fatalf("rollover with a waiting CSR for C=AE: %v", err)
	}
	if after, _ := os.ReadFile(g2.csrPath); string(after) != string(before) || len(log.actions) != 0 {
		t.Fatalf("the refusal changed the CSR or recorded %v", log.actions)
	}

	// The ceremony certified it: refused at import.
	err = Import(ctx, w.c, w.tok, log, "citizen", w.certify(t, g2.csrPath), w.root.Cert, "cli:test", io.Discard)
	if !errors.As(err, &change) || change.Attribute != "C" || !strings.Contains(err.Error(), "C=AE") || !strings.Contains(err.Error(), "C=OM") ||
		!strings.Contains(err.Error(), "nothing was changed") {
		t.Fatalf("import of generation 2 with C=AE: %v", err)
	}
	if _, err := os.Stat(g2.certPath); !errors.Is(err, os.ErrNotExist) || len(log.actions) != 0 {
		t.Fatalf("a refused import installed the certificate (%v) or recorded %v", err, log.actions)
	}

	// The CSR written anew for the same key, but a certificate that names
	// the CA as generation 1 does (its commonName without " G2", even in
	// another case and spacing): refused too, naming generation 1's file.
	if err := os.Remove(g2.csrPath); err != nil {
		t.Fatal(err)
	}
	if err := Rollover(ctx, w.c, w.tok, &memAudit{}, "citizen", "cli:test", io.Discard); err != nil {
		t.Fatalf("rollover after the CSR moved away: %v", err)
	}
	profiles, err := policies.DefaultProfiles(policies.DefaultsConfig{})
	if err != nil {
		t.Fatal(err)
	}
	for _, cn := range []string{"Test citizen", "TEST  citizen"} {
		same, err := ca.CreateIssuingCA(w.root.Cert, w.root.Key, g2.key, ca.IssuingCAConfig{Name: "citizen", CommonName: cn,
			Organization: "Thiqa", Country: "OM", Validity: 365 * 24 * time.Hour, BaseURL: w.c.BaseURL, Policies: ca.IssuingCAPolicies(profiles, "citizen")})
		if err != nil {
			t.Fatal(err)
		}
		err = Import(ctx, w.c, w.tok, log, "citizen", same, w.root.Cert, "cli:test", io.Discard)
		if err == nil || !strings.Contains(err.Error(), "as generation 1's certificate "+w.c.CertDir+"/citizen.pem does") || !strings.Contains(err.Error(), "nothing was changed") {
			t.Fatalf("import of generation 2 named %q as generation 1: %v", cn, err)
		}
		if _, err := os.Stat(g2.certPath); !errors.Is(err, os.ErrNotExist) || len(log.actions) != 0 {
			t.Fatalf("a refused import installed the certificate (%v) or recorded %v", err, log.actions)
		}
	}
	if err := Import(ctx, w.c, w.tok, log, "citizen", w.certify(t, g2.csrPath), w.root.Cert, "cli:test", io.Discard); err != nil {
		t.Fatalf("import of the CSR's certificate: %v", err)
	}
}
