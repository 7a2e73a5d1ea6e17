package ca

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"errors"
	"os/exec"
	"strings"
	"testing"

	zx509 "github.com/zmap/zcrypto/x509"
	"github.com/zmap/zlint/v3"
	"github.com/zmap/zlint/v3/lint"

	"github.com/thiqa/thiqa/internal/testenv"
	"github.com/thiqa/thiqa/policies"
)

// opensslPurpose is the openssl verify -purpose that matches each profile.
var opensslPurpose = map[string]string{
	policies.ProfileCitizenSigning:   "smimesign",
	policies.ProfileCitizenAuth:      "sslclient",
	policies.ProfileOrganisationSeal: "smimesign",
	policies.ProfileTSAUnit:          "timestampsign",
	policies.ProfileOCSPResponder:    "ocsphelper",
}

func zlintFindings(t *testing.T, c *x509.Certificate) []string {
	t.Helper()
	l, err := NewLinter()
	if err != nil {
		t.Fatal(err)
	}
	zc, err := zx509.ParseCertificate(c.Raw)
	if err != nil {
		t.Fatal(err)
	}
	var bad []string
	for name, r := range zlint.LintCertificateEx(zc, l.registry).Results {
		if r.Status >= lint.Warn {
			bad = append(bad, name+": "+r.Status.String()+" "+r.Details)
		}
	}
	return bad
}

func TestIssueEveryProfile(t *testing.T) {
	openssl := testenv.Tool(t, "openssl")
	pki := newTestPKI(t, func(t testing.TB) crypto.Signer { return p384(t) })
	dir := t.TempDir()
	rootPEM := writePEM(t, dir, "root.pem", pki.root)
	leafKeys := map[string]func() (crypto.Signer, error){
		"p256":    func() (crypto.Signer, error) { return ecdsa.GenerateKey(elliptic.P256(), rand.Reader) },
		"p384":    func() (crypto.Signer, error) { return ecdsa.GenerateKey(elliptic.P384(), rand.Reader) },
		"rsa2048": func() (crypto.Signer, error) { return rsa.GenerateKey(rand.Reader, 2048) },
	}
	for _, prof := range []string{policies.ProfileCitizenSigning, policies.ProfileCitizenAuth, policies.ProfileOrganisationSeal, policies.ProfileTSAUnit, policies.ProfileOCSPResponder} {
		for kname, gen := range leafKeys {
			t.Run(prof+"/"+kname, func(t *testing.T) {
				key, err := gen()
				if err != nil {
					t.Fatal(err)
				}
				got, err := pki.authority.Issue(context.Background(), Request{
					Profile: prof, Subject: subjectFor(prof), CSR: newCSR(t, key), RequestedBy: "officer-1",
				})
				if err != nil {
					t.Fatalf("Issue: %v", err)
				}
				c := got.Certificate
				if strings.Contains(c.Subject.String(), "ignored") {
					t.Fatalf("subject taken from the CSR: %s", c.Subject)
				}
				if c.SerialNumber.BitLen() < 64 || c.SerialNumber.Sign() <= 0 {
					t.Fatalf("serial %x", c.SerialNumber)
				}
				rec, err := pki.authority.Certificate(context.Background(), got.Serial)
				if err != nil || string(rec.DER) != string(c.Raw) {
					t.Fatalf("stored certificate: %v", err)
				}
				if e := pki.audit.last(); e.Outcome != "success" || e.Object != got.Serial || e.Actor != "officer-1" {
					t.Fatalf("audit entry %+v", e)
				}
				// (1) openssl verify with the chain, generic and profile purpose.
				issuing := writePEM(t, dir, got.Serial+"-ca.pem", got.Chain[0])
				leaf := writePEM(t, dir, got.Serial+".pem", c)
				for _, args := range [][]string{
					{"verify", "-CAfile", rootPEM, "-untrusted", issuing, leaf},
					{"verify", "-purpose", opensslPurpose[prof], "-CAfile", rootPEM, "-untrusted", issuing, leaf},
				} {
					out, err := exec.Command(openssl, args...).CombinedOutput()
					if err != nil || strings.TrimSpace(string(out)) != leaf+": OK" {
						t.Fatalf("openssl %v: %v\n%s", args, err, out)
					}
				}
				// (2) zlint on the final certificate: no warning or error.
				if bad := zlintFindings(t, c); len(bad) > 0 {
					t.Fatalf("zlint findings on the issued certificate: %v", bad)
				}
			})
		}
	}
	// The CA certificates themselves lint clean too.
	for _, c := range []*x509.Certificate{pki.root, pki.issuers["citizen"].Certificate(), pki.issuers["organisation"].Certificate(), pki.issuers["tsa"].Certificate()} {
		if bad := zlintFindings(t, c); len(bad) > 0 {
			t.Errorf("zlint findings on %s: %v", c.Subject.CommonName, bad)
		}
	}
}

func TestIssuedProfileContent(t *testing.T) {
	pki := newTestPKI(t, func(t testing.TB) crypto.Signer { return p384(t) })
	key := p384(t)
	got, err := pki.authority.Issue(context.Background(), Request{Profile: policies.ProfileCitizenSigning, Subject: subjectFor(policies.ProfileCitizenSigning), CSR: newCSR(t, key)})
	if err != nil {
		t.Fatal(err)
	}
	c := got.Certificate
	if c.KeyUsage != x509.KeyUsageContentCommitment || len(c.ExtKeyUsage) != 0 {
		t.Errorf("key usage %b eku %v", c.KeyUsage, c.ExtKeyUsage)
	}
	if c.Subject.SerialNumber != "IDCOM-12345678" || c.Subject.Country[0] != "OM" {
		t.Errorf("subject %s", c.Subject)
	}
	if c.IssuingCertificateURL[0] != testBaseURL+"/certs/citizen.crt" || c.OCSPServer[0] != testBaseURL+"/ocsp" ||
		c.CRLDistributionPoints[0] != testBaseURL+"/crl/citizen.crl" {
		t.Errorf("urls %v %v %v", c.IssuingCertificateURL, c.OCSPServer, c.CRLDistributionPoints)
	}
	// A key from a CSR: the CA cannot know it is in a QSCD (QCP-n, not QCP-n-qscd).
	if c.Policies[0].String() != policies.OIDPolicyQCPn || c.EmailAddresses[0] != "aisha@example.om" {
		t.Errorf("policies %v", c.Policies)
	}
	// The same key for the same profile again: refused as a replay.
	_, err = pki.authority.Issue(context.Background(), Request{Profile: policies.ProfileCitizenSigning, Subject: subjectFor(policies.ProfileCitizenSigning), CSR: newCSR(t, key)})
	if !errors.Is(err, ErrDuplicateRequest) {
		t.Fatalf("replay: %v", err)
	}
	// A reused request ID: refused, nothing more stored.
	k2 := p384(t)
	req := Request{Profile: policies.ProfileCitizenAuth, Subject: subjectFor(policies.ProfileCitizenAuth), CSR: newCSR(t, k2), RequestID: "r-1"}
	if _, err := pki.authority.Issue(context.Background(), req); err != nil {
		t.Fatal(err)
	}
	req.Profile, req.CSR = policies.ProfileCitizenSigning, newCSR(t, p384(t))
	_, certs := pki.store.counts()
	if _, err := pki.authority.Issue(context.Background(), req); !errors.Is(err, ErrDuplicateRequest) {
		t.Fatalf("request ID replay: %v", err)
	}
	if _, c2 := pki.store.counts(); c2 != certs {
		t.Fatal("a certificate was stored for a replayed request ID")
	}
}

func TestNSSTrustsSigningCertificates(t *testing.T) {
	certutil := testenv.Tool(t, "certutil")
	pki := newTestPKI(t, func(t testing.TB) crypto.Signer { return p384(t) })
	db := t.TempDir()
	run := func(args ...string) string {
		out, err := exec.Command(certutil, args...).CombinedOutput()
		if err != nil {
			t.Fatalf("certutil %v: %v\n%s", args, err, out)
		}
		return string(out)
	}
	run("-N", "-d", "sql:"+db, "--empty-password")
	rootPEM := writePEM(t, db, "root.pem", pki.root)
	run("-A", "-d", "sql:"+db, "-n", "thiqa-root", "-t", "CT,C,C", "-i", rootPEM)
	for _, prof := range []string{policies.ProfileCitizenSigning, policies.ProfileOrganisationSeal} {
		got, err := pki.authority.Issue(context.Background(), Request{Profile: prof, Subject: subjectFor(prof), CSR: newCSR(t, p384(t))})
		if err != nil {
			t.Fatal(err)
		}
		// The issuing CA goes in untrusted (as a PDF's CMS carries it), then
		// the leaf is verified for usage S, certificateUsageEmailSigner: the
		// usage poppler passes to NSS when it validates a signer certificate.
		run("-A", "-d", "sql:"+db, "-n", prof+"-ca", "-t", ",,", "-i", writePEM(t, db, prof+"-ca.pem", got.Chain[0]))
		run("-A", "-d", "sql:"+db, "-n", prof, "-t", ",,", "-i", writePEM(t, db, prof+".pem", got.Certificate))
		out := run("-V", "-d", "sql:"+db, "-n", prof, "-u", "S")
		if !strings.Contains(out, "certificate is valid") {
			t.Fatalf("NSS does not accept %s for signing:\n%s", prof, out)
		}
		// Negative control: the TSA unit certificate (EKU timeStamping only)
		// must not be valid for signing, proving the check discriminates.
		if prof == policies.ProfileCitizenSigning {
			tsa, err := pki.authority.Issue(context.Background(), Request{Profile: policies.ProfileTSAUnit, Subject: subjectFor(policies.ProfileTSAUnit), CSR: newCSR(t, p384(t))})
			if err != nil {
				t.Fatal(err)
			}
			run("-A", "-d", "sql:"+db, "-n", "tsa-ca", "-t", ",,", "-i", writePEM(t, db, "tsa-ca.pem", tsa.Chain[0]))
			run("-A", "-d", "sql:"+db, "-n", "tsa", "-t", ",,", "-i", writePEM(t, db, "tsa.pem", tsa.Certificate))
			out, _ := exec.Command(certutil, "-V", "-d", "sql:"+db, "-n", "tsa", "-u", "S").CombinedOutput()
			if strings.Contains(string(out), "certificate is valid") {
				t.Fatalf("NSS accepts a time-stamping certificate for signing:\n%s", out)
			}
		}
	}
}

// TestIssueOnce: a service key certified once gets the same certificate
// back, unaudited, where Issue refuses a second one; a fresh key is issued.
func TestIssueOnce(t *testing.T) {
	pki := newTestPKI(t, func(t testing.TB) crypto.Signer { return p384(t) })
	ctx := context.Background()
	key := p384(t)
	req := Request{Profile: policies.ProfileTSAUnit, Subject: subjectFor(policies.ProfileTSAUnit), PublicKey: key.Public(),
		KeyGeneratedByService: true, CredentialID: "tsa-unit", RequestedBy: "thiqa-init"}
	first, err := pki.authority.IssueOnce(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	records := len(pki.audit.entries)
	again, err := pki.authority.IssueOnce(ctx, req)
	if err != nil || again.Serial != first.Serial || !again.Certificate.Equal(first.Certificate) || again.CredentialID != "tsa-unit" ||
		len(again.Chain) != 2 || !again.Chain[0].Equal(pki.issuers[policies.IssuerTSA].cert) {
		t.Fatalf("second IssueOnce: %+v %v", again, err)
	}
	if len(pki.audit.entries) != records {
		t.Fatalf("IssueOnce of a certified key wrote %d audit records", len(pki.audit.entries)-records)
	}
	if _, err := pki.authority.Issue(ctx, req); !errors.Is(err, ErrDuplicateRequest) {
		t.Fatalf("Issue of a certified key: %v", err)
	}
	if _, n := pki.store.counts(); n != 1 {
		t.Fatalf("%d certificates stored", n)
	}
}
