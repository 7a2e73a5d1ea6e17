package main

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/pem"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/thiqa/thiqa/internal/pemcert"
	"github.com/thiqa/thiqa/internal/testenv"
)

// writeCSR writes a PEM CSR for key with a CA-like subject and returns its path.
func writeCSR(t *testing.T, dir, name string, key crypto.Signer) string {
	t.Helper()
	der, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{
		Subject: pkix.Name{CommonName: "Test " + name + " CA", Organization: []string{"Thiqa Test"}, Country: []string{"OM"}}}, key)
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(dir, name+".csr")
	writeFile(t, p, string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: der})))
	return p
}

// snapshot reads every file under dir (path → content), to show that a
// refused command changed nothing. SoftHSM's token.object (token state a
// login rewrites) and lock files are left out; the key objects are not.
func snapshot(t *testing.T, dir string) map[string]string {
	t.Helper()
	out := map[string]string{}
	err := filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() || d.Name() == "token.object" || strings.HasSuffix(d.Name(), ".lock") {
			return err
		}
		b, err := os.ReadFile(p)
		out[p] = string(b)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func sameFiles(t *testing.T, what string, before, after map[string]string) {
	t.Helper()
	for p, b := range before {
		if after[p] != b {
			t.Errorf("%s changed %s", what, p)
		}
	}
	for p := range after {
		if _, ok := before[p]; !ok {
			t.Errorf("%s created %s", what, p)
		}
	}
}

// TestCeremonyFolder: the offline root in its own ceremony folder (own
// SoftHSM token): root created (RSA 4096 here), an issuing CA certified
// from a CSR, a CRL signed with a revocation; the log verifies, and each
// bad input (a second root, a key certified twice, the root's own key, an
// edited log) is refused with the folder unchanged.
func TestCeremonyFolder(t *testing.T) {
	tmp := t.TempDir()
	cer := filepath.Join(tmp, "ceremony")
	openssl := testenv.Tool(t, "openssl")

	subject := filepath.Join(tmp, "subject.json")
	writeFile(t, subject, `{"commonName":"Test National Root CA","organizationName":"Test","organizationIdentifier":"NTROM-7654321","country":"OM"}`)
	r := mustThiqa(t, nil, "ca", "root", "create", "--ceremony", cer, "--key-type", "rsa4096", "--subject-file", subject, "--validity", "20y")
	root := filepath.Join(cer, "root.pem")
	fp, err := exec.Command(openssl, "x509", "-in", root, "-noout", "-fingerprint", "-sha256").CombinedOutput()
	if err != nil {
		t.Fatalf("openssl x509: %v %s", err, fp)
	}
	want := strings.TrimSpace(strings.SplitN(string(fp), "=", 2)[1])
	if !strings.Contains(r.stdout, "SHA-256 fingerprint: "+want) {
		t.Fatalf("root create does not print the fingerprint openssl computes (%s):\n%s", want, r.stdout)
	}
	rootCert := readPEMCert(t, root)
	if rootCert.Subject.CommonName != "Test National Root CA" || rootCert.NotAfter.Year()-rootCert.NotBefore.Year() != 20 ||
		rootCert.PublicKeyAlgorithm != x509.RSA || !rootCert.IsCA {
		t.Fatalf("root: %s, %s to %s, %s", rootCert.Subject, rootCert.NotBefore, rootCert.NotAfter, rootCert.PublicKeyAlgorithm)
	}
	if _, err := os.Stat(filepath.Join(cer, "tokens")); err != nil {
		t.Fatalf("the ceremony folder has no token of its own: %v", err)
	}

	before := snapshot(t, cer)
	again := thiqa(t, nil, "ca", "root", "create", "--ceremony", cer)
	if line := errorLine(t, again); again.code != 1 || !strings.Contains(line, "already has a root") {
		t.Fatalf("second root: exit %d, %q", again.code, line)
	}
	sameFiles(t, "a second root create", before, snapshot(t, cer))

	key, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	csr := writeCSR(t, tmp, "citizen", key)
	out := filepath.Join(tmp, "citizen.pem")
	s := mustThiqa(t, nil, "ca", "sign", "--ceremony", cer, "--csr", csr, "--name", "citizen", "--out", out, "--validity", "5y")
	sub := readPEMCert(t, out)
	if err := sub.CheckSignatureFrom(rootCert); err != nil || !sub.IsCA || sub.MaxPathLen != 0 || !sub.MaxPathLenZero ||
		sub.CRLDistributionPoints[0] != "http://127.0.0.1:8080/crl/root.crl" || sub.IssuingCertificateURL[0] != "http://127.0.0.1:8080/certs/root.crt" {
		t.Fatalf("issuing CA certificate: %v %+v", err, sub)
	}
	if v, err := exec.Command(openssl, "verify", "-CAfile", root, out).CombinedOutput(); err != nil {
		t.Fatalf("openssl verify: %v %s", err, v)
	}
	serial := hex.EncodeToString(sub.SerialNumber.Bytes())
	if !strings.Contains(s.stdout, serial) {
		t.Fatalf("ca sign output lacks the serial:\n%s", s.stdout)
	}

	// A CSR for a key that is already an issuing CA's, or an unknown CA name: refused, nothing changes.
	before = snapshot(t, cer)
	for _, tc := range []struct {
		args []string
		want string
		code int
	}{
		{[]string{"--csr", csr, "--name", "citizen", "--out", filepath.Join(tmp, "again.pem")}, "already in use as a CA key", 1},
		{[]string{"--csr", writeCSR(t, tmp, "other", key), "--name", "organisation", "--out", filepath.Join(tmp, "other.pem")}, "already in use as a CA key", 1},
		{[]string{"--csr", writeCSR(t, tmp, "x", mustKey(t)), "--name", "nobody", "--out", filepath.Join(tmp, "x.pem")}, "want one of citizen, organisation, tsa", 2},
		{[]string{"--csr", writeCSR(t, tmp, "y", mustKey(t)), "--name", "citizen", "--out", out}, "exists", 1},
	} {
		r := thiqa(t, nil, append([]string{"ca", "sign", "--ceremony", cer}, tc.args...)...)
		if line := errorLine(t, r); r.code != tc.code || !strings.Contains(line, tc.want) {
			t.Fatalf("ca sign %v: exit %d, %q (want %q)", tc.args, r.code, line, tc.want)
		}
	}
	sameFiles(t, "refused ca sign", before, snapshot(t, cer))

	// The root's CRL: first empty, then revoking the CA.
	crl1 := filepath.Join(tmp, "root-1.crl")
	mustThiqa(t, nil, "ca", "crl", "--ceremony", cer, "--out", crl1)
	crl2 := filepath.Join(tmp, "root-2.crl")
	c := mustThiqa(t, nil, "ca", "crl", "--ceremony", cer, "--out", crl2, "--revoke", strings.ToUpper(serial), "--reason", "keyCompromise", "--next-update", "30d")
	if !strings.Contains(c.stdout, "root CRL number 2 signed: 1 revoked") {
		t.Fatalf("ca crl --revoke:\n%s", c.stdout)
	}
	text, err := exec.Command(openssl, "crl", "-inform", "DER", "-in", crl2, "-CAfile", root, "-noout", "-text").CombinedOutput()
	if err != nil || !strings.Contains(string(text), "verify OK") || !strings.Contains(strings.ToUpper(string(text)), strings.ToUpper(serial)) ||
		!strings.Contains(string(text), "Key Compromise") || !strings.Contains(string(text), "Only CA Certificates") {
		t.Fatalf("openssl crl: %v\n%s", err, text)
	}
	before = snapshot(t, cer)
	r = thiqa(t, nil, "ca", "crl", "--ceremony", cer, "--out", filepath.Join(tmp, "root-3.crl"), "--revoke", serial, "--reason", "superseded")
	if line := errorLine(t, r); r.code != 1 || !strings.Contains(line, "already revoked") {
		t.Fatalf("revoking twice: exit %d, %q", r.code, line)
	}
	r = thiqa(t, nil, "ca", "crl", "--ceremony", cer, "--out", filepath.Join(tmp, "root-3.crl"), "--revoke", "0badc0de", "--reason", "superseded")
	if line := errorLine(t, r); r.code != 1 || !strings.Contains(line, "certified no issuing CA with that serial") {
		t.Fatalf("revoking an unknown serial: exit %d, %q", r.code, line)
	}
	sameFiles(t, "refused ca crl", before, snapshot(t, cer))

	v := mustThiqa(t, nil, "audit", "verify", "--ceremony", cer)
	if !strings.Contains(v.stdout, "ceremony log OK: 5 entries") || !strings.Contains(v.stdout, "revoked (keyCompromise)") || !strings.Contains(v.stdout, "last CRL      number 2") {
		t.Fatalf("audit verify --ceremony:\n%s", v.stdout)
	}

	// Edit entry 2 (the certification): verify names it, and every
	// ceremony command refuses to act on the folder.
	logPath := filepath.Join(cer, "ceremony.log")
	orig := mustRead(t, logPath)
	edited := regexp.MustCompile(`"pathLen":0`).ReplaceAllString(orig, `"pathLen":1`)
	if edited == orig {
		t.Fatal("the log has no pathLen to edit")
	}
	writeFile(t, logPath, edited)
	before = snapshot(t, cer)
	v = thiqa(t, nil, "audit", "verify", "--ceremony", cer)
	if v.code != 1 || !strings.Contains(v.stdout, "ceremony log BROKEN at entry 2") {
		t.Fatalf("edited log: exit %d\n%s%s", v.code, v.stdout, v.stderr)
	}
	for _, args := range [][]string{
		{"ca", "sign", "--ceremony", cer, "--csr", writeCSR(t, tmp, "z", mustKey(t)), "--name", "tsa", "--out", filepath.Join(tmp, "z.pem")},
		{"ca", "crl", "--ceremony", cer, "--out", filepath.Join(tmp, "z.crl")},
		{"ca", "root", "create", "--ceremony", cer},
	} {
		r := thiqa(t, nil, args...)
		if line := errorLine(t, r); r.code != 1 || !strings.Contains(line, "ceremony log") || !strings.Contains(line, "broken at entry 2") {
			t.Fatalf("%v on an edited log: exit %d, %q", args, r.code, line)
		}
	}
	sameFiles(t, "commands on an edited log", before, snapshot(t, cer))
	for _, p := range []string{filepath.Join(tmp, "z.pem"), filepath.Join(tmp, "z.crl")} {
		if _, err := os.Stat(p); err == nil {
			t.Fatalf("%s was written from an edited ceremony folder", p)
		}
	}
	// A line that is not JSON at all is named too.
	writeFile(t, logPath, strings.Replace(orig, "\n", "\n{garbage\n", 1))
	if v := thiqa(t, nil, "audit", "verify", "--ceremony", cer); v.code != 1 || !strings.Contains(v.stdout, "BROKEN at entry 2") {
		t.Fatalf("garbage line: exit %d\n%s", v.code, v.stdout)
	}
}

func mustKey(t *testing.T) *ecdsa.PrivateKey {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func readPEMCert(t *testing.T, path string) *x509.Certificate {
	t.Helper()
	c, err := pemcert.Parse([]byte(mustRead(t, path)))
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return c
}

// TestDevelopmentRootIsOnline: the default of `make run` keeps the root key
// on the one token; serving says so (a warning and thiqa_root_key_online
// 1) and the offline root's commands refuse such a folder.
func TestDevelopmentRootIsOnline(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	mustThiqa(t, nil, "init", "--data", dir)
	srv := startServer(t, dir, nil)
	code, _, body := srv.get(t, "/metrics", "")
	if code != 200 || !strings.Contains(string(body), "thiqa_root_key_online 1") || !strings.Contains(string(body), "thiqa_root_crl_next_update_seconds") {
		t.Fatalf("/metrics: %d", code)
	}
	waitFor(t, 20*time.Second, func() string { // the publisher's first run is in the background
		if code, _, der := srv.get(t, "/crl/root.crl", ""); code != 200 || len(der) == 0 {
			return fmt.Sprintf("the online root's CRL: %d", code)
		}
		return ""
	})
	srv.stop(t)
	if !strings.Contains(srv.stderr.String(), "the root CA key is on the online token: development only") {
		t.Fatalf("no warning about the online root:\n%s", srv.stderr.String())
	}
	root := filepath.Join(dir, "ca", "root.pem")
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"init", "--data", dir, "--root-cert", root}, "is on its token"},
		{[]string{"ca", "crl", "import", "--data", dir, "--crl", root}, "generates the root CRL itself"},
		{[]string{"ca", "rollover", "--data", dir, "--name", "citizen"}, "certified by the offline root"},
		{[]string{"ca", "import", "--data", dir, "--name", "citizen", "--cert", root}, "no key awaiting a certificate"},
	} {
		r := thiqa(t, nil, tc.args...)
		if line := errorLine(t, r); r.code != 1 || !strings.Contains(line, tc.want) {
			t.Fatalf("%v: exit %d, %q", tc.args, r.code, line)
		}
	}
}
