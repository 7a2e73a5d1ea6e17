package main

import (
	"bytes"
	"crypto/x509"
	"encoding/hex"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/thiqa/thiqa/ca"
	"github.com/thiqa/thiqa/internal/pemcert"
	"github.com/thiqa/thiqa/internal/testenv"
)

// TestCARollover, on SQLite and PostgreSQL: after `thiqa ca rollover` and
// the ceremony's certificate, new citizen certificates come from the
// second generation (its own caIssuers and CRL URLs), while the first
// keeps answering OCSP and signing its CRL for the certificates it issued;
// /certs/citizen.crt stays the first generation's, /certs/citizen_2.crt is
// the second's. A rollover after thiqa.yaml's country was edited is
// refused with nothing generated.
func TestCARollover(t *testing.T) {
	for _, pg := range []bool{false, true} {
		name := "sqlite"
		if pg {
			name = "postgres"
		}
		t.Run(name, func(t *testing.T) { runRollover(t, pg) })
	}
}

func runRollover(t *testing.T, postgres bool) {
	d := newOfflineDeployment(t, postgres)
	base := "http://127.0.0.1:" + d.port
	caDir := filepath.Join(d.dir, "ca")
	d.serve(t)
	first := issueOK(t, d.srv, d.officer, ca.IssueRequest{Profile: "citizen-auth", Subject: citizenSubject(), CSR: newTestCSR(t)})
	firstCert := certOf(t, first.Certificate)
	if firstCert.IssuingCertificateURL[0] != base+"/certs/citizen.crt" {
		t.Fatalf("first generation AIA: %v", firstCert.IssuingCertificateURL)
	}

	// thiqa.yaml's citizen country edited since the CA was made: the
	// rollover is refused, naming both countries, with no key and no CSR
	// (the rollover below would otherwise find generation 2 waiting).
	conf := filepath.Join(d.dir, "thiqa.yaml")
	orig := mustRead(t, conf)
	i := strings.Index(orig, "- name: citizen")
	j := strings.Index(orig[max(i, 0):], "country: OM")
	if i < 0 || j < 0 {
		t.Fatalf("no citizen CA country in thiqa.yaml:\n%s", orig)
	}
	writeFile(t, conf, orig[:i+j]+"country: AE"+orig[i+j+len("country: OM"):])
	csr := filepath.Join(caDir, "citizen_2.csr")
	r := thiqa(t, d.env, "ca", "rollover", "--data", d.dir, "--name", "citizen")
	if line := errorLine(t, r); r.code != 1 || !strings.Contains(line, "C=AE") || !strings.Contains(line, "C=OM") ||
		!strings.Contains(line, filepath.Join(caDir, "citizen.pem")) || !strings.Contains(line, "new CA, not a rollover") {
		t.Fatalf("rollover with thiqa.yaml's country edited: %d %q", r.code, line)
	}
	if _, err := os.Stat(csr); !os.IsNotExist(err) {
		t.Fatalf("a refused rollover wrote %s: %v", csr, err)
	}
	writeFile(t, conf, orig)

	// Rollover while serving: a new key and CSR, nothing else changes.
	r = mustThiqa(t, d.env, "ca", "rollover", "--data", d.dir, "--name", "citizen")
	if !strings.Contains(r.stdout, csr) || !strings.Contains(r.stdout, "object=citizen-ca-2") || strings.Contains(r.stdout, "already waits") {
		t.Fatalf("rollover:\n%s", r.stdout)
	}
	if again := mustThiqa(t, d.env, "ca", "rollover", "--data", d.dir, "--name", "citizen"); !strings.Contains(again.stdout, "already waits for its certificate") {
		t.Fatalf("second rollover:\n%s", again.stdout)
	}
	// A CSR for the first generation's key again is refused by the ceremony.
	r = thiqa(t, nil, "ca", "sign", "--ceremony", d.cer, "--csr", filepath.Join(caDir, "citizen.csr"), "--name", "citizen", "--out", d.path("x.pem"))
	if line := errorLine(t, r); r.code != 1 || !strings.Contains(line, "already in use") {
		t.Fatalf("re-certifying generation 1: %q", line)
	}
	gen2 := d.path("citizen_2.pem")
	mustThiqa(t, nil, "ca", "sign", "--ceremony", d.cer, "--csr", csr, "--name", "citizen", "--out", gen2)
	// The first generation's certificate is not this key's.
	r = thiqa(t, d.env, "ca", "import", "--data", d.dir, "--name", "citizen", "--cert", d.path("citizen.pem"))
	if line := errorLine(t, r); r.code != 1 || !strings.Contains(line, "another key") {
		t.Fatalf("importing generation 1's certificate for generation 2: %q", line)
	}
	imp := mustThiqa(t, d.env, "ca", "import", "--data", d.dir, "--name", "citizen", "--cert", gen2)
	if !strings.Contains(imp.stdout, "generation 2") || !strings.Contains(imp.stdout, "citizen_2") {
		t.Fatalf("import of generation 2:\n%s", imp.stdout)
	}
	if r := thiqa(t, d.env, "ca", "import", "--data", d.dir, "--name", "citizen", "--cert", gen2); r.code != 1 || !strings.Contains(errorLine(t, r), "no key awaiting a certificate") {
		t.Fatalf("importing twice: %q", r.stderr)
	}

	d.srv.stop(t)
	d.start(t)
	second := issueOK(t, d.srv, d.officer, ca.IssueRequest{Profile: "citizen-auth", Subject: citizenSubject(), CSR: newTestCSR(t)})
	secondCert := certOf(t, second.Certificate)
	gen2Cert := readPEMCert(t, filepath.Join(caDir, "citizen_2.pem"))
	if err := secondCert.CheckSignatureFrom(gen2Cert); err != nil ||
		!slices.Equal(secondCert.IssuingCertificateURL, []string{base + "/certs/citizen_2.crt"}) ||
		!slices.Equal(secondCert.CRLDistributionPoints, []string{base + "/crl/citizen_2.crl"}) {
		t.Fatalf("after the rollover: %v, AIA %v, CRL %v", err, secondCert.IssuingCertificateURL, secondCert.CRLDistributionPoints)
	}
	if gen2Cert.Subject.CommonName != "Thiqa Citizen CA (PLACEHOLDER) G2" {
		t.Fatalf("generation 2 subject: %s", gen2Cert.Subject)
	}
	leaf2 := d.path("second.pem")
	writeFile(t, leaf2, second.Certificate)
	if out, err := exec.Command(testenv.Tool(t, "openssl"), "verify", "-CAfile", d.root, "-untrusted", filepath.Join(caDir, "citizen_2.pem"), leaf2).CombinedOutput(); err != nil {
		t.Fatalf("openssl verify generation 2: %v\n%s", err, out)
	}
	for path, want := range map[string]*x509.Certificate{"/certs/citizen.crt": readPEMCert(t, filepath.Join(caDir, "citizen.pem")), "/certs/citizen_2.crt": gen2Cert} {
		if code, _, body := d.srv.get(t, path, ""); code != http.StatusOK || !bytes.Equal(body, want.Raw) {
			t.Fatalf("%s: %d, not the generation's certificate", path, code)
		}
	}
	// Both generations answer OCSP for their own certificates; revoked
	// certificates land on their own generation's CRL.
	ocspStatus := func(issuer, leafPEM string) string {
		leaf := d.path("ocsp-" + issuer + ".pem")
		writeFile(t, leaf, leafPEM)
		out, _ := exec.Command(testenv.Tool(t, "openssl"), "ocsp", "-issuer", filepath.Join(caDir, issuer+".pem"), "-cert", leaf,
			"-url", base+"/ocsp", "-CAfile", d.root, "-no_nonce").CombinedOutput()
		return string(out)
	}
	for _, tc := range []struct{ issuer, leaf string }{{"citizen", first.Certificate}, {"citizen_2", second.Certificate}} {
		if out := ocspStatus(tc.issuer, tc.leaf); !strings.Contains(out, ": good") || !strings.Contains(out, "Response verify OK") {
			t.Fatalf("OCSP from %s: %s", tc.issuer, out)
		}
	}
	for _, s := range []string{first.Serial, second.Serial} {
		mustThiqa(t, d.env, "revoke", "--data", d.dir, "--serial", s, "--reason", "superseded")
	}
	for _, tc := range []struct {
		crl    string
		issuer *x509.Certificate
		serial string
	}{{"/crl/citizen.crl", readPEMCert(t, filepath.Join(caDir, "citizen.pem")), first.Serial}, {"/crl/citizen_2.crl", gen2Cert, second.Serial}} {
		waitFor(t, 30*time.Second, func() string {
			code, _, der := d.srv.get(t, tc.crl, "")
			rl, err := x509.ParseRevocationList(der)
			if code != http.StatusOK || err != nil || rl.CheckSignatureFrom(tc.issuer) != nil {
				return tc.crl + " is not the generation's CRL"
			}
			for _, e := range rl.RevokedCertificateEntries {
				if hex.EncodeToString(e.SerialNumber.Bytes()) == tc.serial {
					return ""
				}
			}
			return tc.crl + " does not list " + tc.serial
		})
	}
	for _, tc := range []struct{ issuer, leaf string }{{"citizen", first.Certificate}, {"citizen_2", second.Certificate}} {
		if out := ocspStatus(tc.issuer, tc.leaf); !strings.Contains(out, ": revoked") {
			t.Fatalf("OCSP from %s after revocation: %s", tc.issuer, out)
		}
	}
	d.srv.stop(t)
	// This deployment's trusted list names both generations.
	mustThiqa(t, d.env, "tsl", "build", "--data", d.dir)
	if list := mustRead(t, filepath.Join(d.dir, "tsl", "tsl.xml")); !strings.Contains(list, "Thiqa Citizen CA (PLACEHOLDER) G2") ||
		!strings.Contains(list, ">Thiqa Citizen CA (PLACEHOLDER)<") {
		t.Fatal("the trusted list does not name both generations of the citizen CA")
	}
	mustThiqa(t, d.env, "audit", "verify", "--data", d.dir)
	if _, err := os.Stat(filepath.Join(caDir, "ocsp-citizen_2.pem")); err != nil {
		t.Fatalf("generation 2 has no OCSP responder of its own: %v", err)
	}
}

func certOf(t *testing.T, pemText string) *x509.Certificate {
	t.Helper()
	c, err := pemcert.Parse([]byte(pemText))
	if err != nil {
		t.Fatal(err)
	}
	return c
}
