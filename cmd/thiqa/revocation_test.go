package main

import (
	"bytes"
	"crypto"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"math/big"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/thiqa/thiqa/ca"
	"github.com/thiqa/thiqa/ca/ocsp"
	"github.com/thiqa/thiqa/internal/auth"
	"github.com/thiqa/thiqa/internal/testenv"
	"github.com/thiqa/thiqa/policies"
)

// malformedOCSP is the OCSPResponse {responseStatus malformedRequest}.
var malformedOCSP = []byte{0x30, 0x03, 0x0a, 0x01, 0x01}

// revFixture is a running server with issued certificates.
type revFixture struct {
	dir, tmp string
	env      []string
	srv      *server
	officer  string
}

func newRevFixture(t *testing.T, postgres bool) *revFixture {
	t.Helper()
	f := &revFixture{dir: filepath.Join(t.TempDir(), "data"), tmp: t.TempDir()}
	if postgres {
		f.env = []string{"THIQA_TEST_DSN=" + testenv.PostgresDSN(t)}
		conf := editedConfig(t, f.dir, func(y string) string {
			return strings.Replace(y, "driver: sqlite\n  dsn: thiqa.db\n  dsnEnv: \"\"", "driver: postgres\n  dsn: \"\"\n  dsnEnv: THIQA_TEST_DSN", 1)
		})
		mustThiqa(t, f.env, "init", "--data", f.dir, "--config", conf)
	} else {
		mustThiqa(t, nil, "init", "--data", f.dir)
	}
	for _, name := range []string{"citizen", "organisation", "tsa"} {
		if _, err := os.Stat(filepath.Join(f.dir, "ca", "ocsp-"+name+".pem")); err != nil {
			t.Fatalf("init wrote no OCSP responder certificate for %s: %v", name, err)
		}
	}
	writeFile(t, f.path("chain.pem"), mustRead(t, filepath.Join(f.dir, "ca", "citizen.pem"))+mustRead(t, filepath.Join(f.dir, "ca", "root.pem")))
	f.srv = startServer(t, f.dir, f.env)
	f.officer = lastLine(mustThiqa(t, f.env, "token", "--data", f.dir, "--subject", "officer-7", "--role", "registration-officer").stdout)
	return f
}

func (f *revFixture) path(name string) string { return filepath.Join(f.tmp, name) }

// issue issues a citizen-signing certificate for a civil number through
// the API and writes it to name; it returns the serial.
func (f *revFixture) issue(t *testing.T, civil, name string) string {
	t.Helper()
	sub := citizenSubject()
	sub["civilNumber"] = civil
	out := issueOK(t, f.srv, f.officer, ca.IssueRequest{Profile: "citizen-signing", Subject: sub, CSR: newTestCSR(t)})
	writeFile(t, f.path(name), out.Certificate)
	return out.Serial
}

// ocspCheck asks the server about cert with the real openssl client and
// returns its output after checking the response verified.
func (f *revFixture) ocspCheck(t *testing.T, nonce bool, target ...string) string {
	t.Helper()
	args := []string{"ocsp", "-issuer", filepath.Join(f.dir, "ca", "citizen.pem"), "-url", f.srv.base + "/ocsp",
		"-CAfile", filepath.Join(f.dir, "ca", "root.pem")}
	if nonce {
		args = append(args, "-nonce")
	} else {
		args = append(args, "-no_nonce")
	}
	args = append(args, target...)
	out, err := exec.Command(testenv.Tool(t, "openssl"), args...).CombinedOutput()
	if err != nil || !strings.Contains(string(out), "Response verify OK") {
		t.Fatalf("openssl %v: %v\n%s", args, err, out)
	}
	return string(out)
}

// revoke posts a revocation and returns the status and body.
func (f *revFixture) revoke(t *testing.T, serial, token, reason string) (int, []byte) {
	t.Helper()
	return f.srv.post(t, "/api/v1/certificates/"+serial+"/revoke", token, map[string]string{"reason": reason})
}

// crl fetches a CRL, writes it as DER and PEM, and returns it parsed.
func (f *revFixture) crl(t *testing.T, name string) *x509.RevocationList {
	t.Helper()
	code, _, body := f.srv.get(t, "/crl/"+name, "")
	if code != http.StatusOK {
		t.Fatalf("GET /crl/%s: %d %s", name, code, body)
	}
	rl, err := x509.ParseRevocationList(body)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(f.path(name), body, 0o600); err != nil {
		t.Fatal(err)
	}
	writeFile(t, f.path(name+".pem"), string(pem.EncodeToMemory(&pem.Block{Type: "X509 CRL", Bytes: body})))
	return rl
}

// waitFor retries check until it returns "" or the time is up.
func waitFor(t *testing.T, d time.Duration, check func() string) {
	t.Helper()
	deadline := time.Now().Add(d)
	for {
		msg := check()
		if msg == "" {
			return
		}
		if time.Now().After(deadline) {
			t.Fatal(msg)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func onCRL(rl *x509.RevocationList, serial string) bool {
	for _, e := range rl.RevokedCertificateEntries {
		if fmt.Sprintf("%x", e.SerialNumber) == strings.TrimLeft(serial, "0") {
			return true
		}
	}
	return false
}

func TestRevocationOnSQLite(t *testing.T) {
	f := newRevFixture(t, false)
	leaf := f.issue(t, "12345678", "leaf.pem")
	f.issue(t, "23456789", "other.pem")
	own := f.issue(t, "34567890", "own.pem")
	byCLI := f.issue(t, "45678901", "cli.pem")

	// Good, with a nonce (signed on demand) and without (pre-signed).
	for _, nonce := range []bool{true, false} {
		if out := f.ocspCheck(t, nonce, "-cert", f.path("leaf.pem")); !strings.Contains(out, f.path("leaf.pem")+": good") {
			t.Fatalf("want good:\n%s", out)
		}
	}
	// A serial the CA never issued.
	if out := f.ocspCheck(t, true, "-serial", "0x5eed0123456789abcdef"); !strings.Contains(out, "0x5eed0123456789abcdef: unknown") {
		t.Fatalf("want unknown:\n%s", out)
	}
	first := f.crl(t, "citizen.crl")
	if onCRL(first, leaf) || len(first.RevokedCertificateEntries) != 0 {
		t.Fatalf("fresh CRL lists %d entries", len(first.RevokedCertificateEntries))
	}

	// Refusals: each a problem answer and an audit record, nothing revoked.
	agency := lastLine(mustThiqa(t, nil, "token", "--data", f.dir, "--subject", "NTROM-7654321", "--role", "agency").stdout)
	operator := lastLine(mustThiqa(t, nil, "token", "--data", f.dir, "--subject", "op-1", "--role", "operator").stdout)
	citizen := lastLine(mustThiqa(t, nil, "token", "--data", f.dir, "--subject", "34567890", "--role", "citizen").stdout)
	code, body := f.revoke(t, leaf, "", "keyCompromise")
	wantProblem(t, "unauthenticated", code, body, http.StatusUnauthorized, "")
	code, body = f.revoke(t, leaf, operator, "keyCompromise")
	wantProblem(t, "operator", code, body, http.StatusForbidden, "certificate.revoke")
	code, body = f.revoke(t, leaf, citizen, "keyCompromise")
	wantProblem(t, "someone else's certificate", code, body, http.StatusForbidden, "may not revoke")
	code, body = f.revoke(t, leaf, agency, "keyCompromise")
	wantProblem(t, "agency, citizen certificate", code, body, http.StatusForbidden, "may not revoke")
	code, body = f.revoke(t, leaf, f.officer, "certificateHold")
	wantProblem(t, "certificateHold", code, body, http.StatusBadRequest, "certificateHold")
	code, body = f.revoke(t, "5eed0123456789abcdef", f.officer, "keyCompromise")
	wantProblem(t, "unknown serial", code, body, http.StatusNotFound, "5eed0123456789abcdef")
	code, body = f.srv.post(t, "/api/v1/certificates/"+leaf+"/revoke", f.officer, map[string]any{"reason": "superseded", "extra": 1})
	wantProblem(t, "unknown field", code, body, http.StatusBadRequest, "reason")
	if out := f.ocspCheck(t, true, "-cert", f.path("leaf.pem")); !strings.Contains(out, ": good") {
		t.Fatalf("a refused revocation changed the status:\n%s", out)
	}

	// The officer revokes; the answer changes at once, also on the pre-signed path.
	code, body = f.revoke(t, leaf, f.officer, "keyCompromise")
	var rr RevokeResponse
	if code != http.StatusOK || json.Unmarshal(body, &rr) != nil || rr.Status != "revoked" || rr.Reason != "keyCompromise" || rr.CA != "citizen" {
		t.Fatalf("revoke: %d %s", code, body)
	}
	for _, nonce := range []bool{true, false} {
		out := f.ocspCheck(t, nonce, "-cert", f.path("leaf.pem"))
		if !strings.Contains(out, f.path("leaf.pem")+": revoked") || !strings.Contains(out, "Reason: keyCompromise") {
			t.Fatalf("want revoked (keyCompromise):\n%s", out)
		}
	}
	code, body = f.revoke(t, leaf, f.officer, "superseded")
	wantProblem(t, "already revoked", code, body, http.StatusConflict, "already revoked")
	code, body = f.revoke(t, strings.ToUpper(own), citizen, "affiliationChanged")
	if code != http.StatusOK {
		t.Fatalf("a citizen revoking their own certificate: %d %s", code, body)
	}
	if out := f.ocspCheck(t, false, "-cert", f.path("other.pem")); !strings.Contains(out, ": good") {
		t.Fatalf("another certificate changed:\n%s", out)
	}

	// The CRL follows within seconds, verifies with openssl and revokes the leaf.
	var crl *x509.RevocationList
	waitFor(t, 20*time.Second, func() string {
		crl = f.crl(t, "citizen.crl")
		if !onCRL(crl, leaf) || !onCRL(crl, own) {
			return fmt.Sprintf("CRL %v lists %d entries, not yet the revoked ones", crl.Number, len(crl.RevokedCertificateEntries))
		}
		return ""
	})
	if crl.Number.Cmp(first.Number) <= 0 {
		t.Fatalf("CRL number %v after %v", crl.Number, first.Number)
	}
	openssl := testenv.Tool(t, "openssl")
	out, err := exec.Command(openssl, "crl", "-inform", "DER", "-in", f.path("citizen.crl"), "-CAfile", f.path("chain.pem"), "-noout").CombinedOutput()
	if err != nil || !strings.Contains(string(out), "verify OK") {
		t.Fatalf("openssl crl: %v\n%s", err, out)
	}
	out, _ = exec.Command(openssl, "verify", "-crl_check", "-CRLfile", f.path("citizen.crl.pem"), "-CAfile", f.path("chain.pem"), f.path("leaf.pem")).CombinedOutput()
	if !strings.Contains(string(out), "certificate revoked") {
		t.Fatalf("openssl verify -crl_check on the revoked leaf:\n%s", out)
	}
	out, err = exec.Command(openssl, "verify", "-crl_check", "-CRLfile", f.path("citizen.crl.pem"), "-CAfile", f.path("chain.pem"), f.path("other.pem")).CombinedOutput()
	if err != nil || !strings.Contains(string(out), ": OK") {
		t.Fatalf("openssl verify -crl_check on a good certificate: %v\n%s", err, out)
	}
	if code, _, _ := f.srv.get(t, "/crl/nosuch.crl", ""); code != http.StatusNotFound {
		t.Fatalf("unknown CRL: %d", code)
	}

	// `thiqa revoke` while the server runs: the server learns of it by polling.
	r := mustThiqa(t, nil, "revoke", "--data", f.dir, "--serial", byCLI, "--reason", "superseded")
	if !strings.Contains(r.stdout, "revoked "+byCLI) {
		t.Fatalf("thiqa revoke: %s", r.stdout)
	}
	waitFor(t, 15*time.Second, func() string {
		if out := f.ocspCheck(t, false, "-cert", f.path("cli.pem")); !strings.Contains(out, ": revoked") {
			return "the pre-signed answer is still not revoked after thiqa revoke:\n" + out
		}
		return ""
	})
	r = thiqa(t, nil, "revoke", "--data", f.dir, "--serial", byCLI, "--reason", "superseded")
	if r.code == 0 || !strings.Contains(errorLine(t, r), "already revoked") {
		t.Fatalf("revoking twice from the CLI: exit %d %s", r.code, r.stderr)
	}

	// Bad OCSP input gets malformedRequest; GET answers carry cache headers.
	checkBadOCSP(t, f)
	cert := readPEMCert(t, f.path("other.pem"))
	issuer := readPEMCert(t, filepath.Join(f.dir, "ca", "citizen.pem"))
	req, err := ocsp.NewRequest(issuer, cert.SerialNumber, crypto.SHA256, nil)
	if err != nil {
		t.Fatal(err)
	}
	code, hdr, body := f.srv.get(t, "/ocsp/"+url.PathEscape(base64.StdEncoding.EncodeToString(req)), "")
	if code != http.StatusOK || hdr.Get("Content-Type") != "application/ocsp-response" || hdr.Get("ETag") == "" ||
		!strings.Contains(hdr.Get("Cache-Control"), "max-age=") || bytes.Equal(body, malformedOCSP) {
		t.Fatalf("GET /ocsp: %d %v %x", code, hdr, body)
	}

	// CRL numbers never go backwards across a restart.
	f.srv.stop(t)
	f.srv = startServer(t, f.dir, nil)
	waitFor(t, 20*time.Second, func() string {
		code, _, _ := f.srv.get(t, "/crl/citizen.crl", "")
		if code != http.StatusOK {
			return "no CRL after restart"
		}
		return ""
	})
	if again := f.crl(t, "citizen.crl"); again.Number.Cmp(crl.Number) <= 0 || !onCRL(again, byCLI) {
		t.Fatalf("after restart: CRL number %v (before %v), CLI revocation listed %v", again.Number, crl.Number, onCRL(again, byCLI))
	}
	if out := f.ocspCheck(t, false, "-cert", f.path("leaf.pem")); !strings.Contains(out, ": revoked") {
		t.Fatalf("after restart:\n%s", out)
	}
	f.srv.stop(t)

	verified := mustThiqa(t, nil, "audit", "verify", "--data", f.dir)
	if !strings.Contains(verified.stdout, "audit chain OK") {
		t.Fatalf("audit verify: %s", verified.stdout)
	}
	db := filepath.Join(f.dir, "thiqa.db")
	if n := auditCount(t, db, "certificate.revoke", "success", ""); n != 3 {
		t.Fatalf("%d successful revocation records, want 3", n)
	}
	// 401, 403 ×3, 400 ×2, 404, 409 from the API and 409 from the CLI.
	if n := auditCount(t, db, "certificate.revoke", "refused", ""); n != 9 {
		t.Fatalf("%d refused revocation records, want 9", n)
	}
}

// checkBadOCSP sends garbage, truncated and oversized requests, a request
// for an unknown CA and bad GET paths: each answer is an OCSP error.
func checkBadOCSP(t *testing.T, f *revFixture) {
	t.Helper()
	cert := readPEMCert(t, f.path("other.pem"))
	issuer := readPEMCert(t, filepath.Join(f.dir, "ca", "citizen.pem"))
	good, err := ocsp.NewRequest(issuer, cert.SerialNumber, crypto.SHA1, nil)
	if err != nil {
		t.Fatal(err)
	}
	root := readPEMCert(t, filepath.Join(f.dir, "ca", "root.pem"))
	foreign, err := ocsp.NewRequest(root, big.NewInt(12345), crypto.SHA1, nil) // the root is not an OCSP issuer here
	if err != nil {
		t.Fatal(err)
	}
	post := func(body []byte) []byte {
		resp, err := http.Post(f.srv.base+"/ocsp", "application/ocsp-request", bytes.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "application/ocsp-response" {
			t.Fatalf("POST /ocsp: %d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
		}
		return b
	}
	for name, body := range map[string][]byte{
		"garbage":   []byte("this is not DER at all"),
		"empty":     {},
		"truncated": good[:len(good)-3],
		"trailing":  append(append([]byte{}, good...), 0),
		"oversized": append(append([]byte{}, good...), make([]byte, 64<<10)...),
	} {
		if got := post(body); !bytes.Equal(got, malformedOCSP) {
			t.Errorf("%s request: got %x, want malformedRequest", name, got)
		}
	}
	if got := post(foreign); !bytes.Equal(got, []byte{0x30, 0x03, 0x0a, 0x01, 0x06}) {
		t.Errorf("request for another CA: got %x, want unauthorized", got)
	}
	for _, p := range []string{"/ocsp/!!!not-base64", "/ocsp/bm90LWRlcg=="} {
		code, _, body := f.srv.get(t, p, "")
		if code != http.StatusOK || !bytes.Equal(body, malformedOCSP) {
			t.Errorf("GET %s: %d %x", p, code, body)
		}
	}
	if out := f.ocspCheck(t, false, "-cert", f.path("other.pem")); !strings.Contains(out, ": good") {
		t.Fatalf("bad requests changed an answer:\n%s", out)
	}
}

func readPEMCert(t *testing.T, path string) *x509.Certificate {
	t.Helper()
	c, err := parseCertPEM([]byte(mustRead(t, path)))
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return c
}

func TestRevocationOnPostgres(t *testing.T) {
	f := newRevFixture(t, true)
	leaf := f.issue(t, "12345678", "leaf.pem")
	if out := f.ocspCheck(t, true, "-cert", f.path("leaf.pem")); !strings.Contains(out, f.path("leaf.pem")+": good") {
		t.Fatalf("want good:\n%s", out)
	}
	if out := f.ocspCheck(t, true, "-serial", "0x5eed0123456789abcdef"); !strings.Contains(out, ": unknown") {
		t.Fatalf("want unknown:\n%s", out)
	}
	first := f.crl(t, "citizen.crl")
	if code, body := f.revoke(t, leaf, f.officer, "cessationOfOperation"); code != http.StatusOK {
		t.Fatalf("revoke: %d %s", code, body)
	}
	code, body := f.revoke(t, leaf, f.officer, "cessationOfOperation")
	wantProblem(t, "already revoked", code, body, http.StatusConflict, "already revoked")
	out := f.ocspCheck(t, false, "-cert", f.path("leaf.pem"))
	if !strings.Contains(out, ": revoked") || !strings.Contains(out, "cessationOfOperation") {
		t.Fatalf("want revoked:\n%s", out)
	}
	var crl *x509.RevocationList
	waitFor(t, 20*time.Second, func() string {
		if crl = f.crl(t, "citizen.crl"); !onCRL(crl, leaf) {
			return "the CRL does not list the revoked certificate yet"
		}
		return ""
	})
	if crl.Number.Cmp(first.Number) <= 0 {
		t.Fatalf("CRL number %v after %v", crl.Number, first.Number)
	}
	openssl := testenv.Tool(t, "openssl")
	o, _ := exec.Command(openssl, "verify", "-crl_check", "-CRLfile", f.path("citizen.crl.pem"), "-CAfile", f.path("chain.pem"), f.path("leaf.pem")).CombinedOutput()
	if !strings.Contains(string(o), "certificate revoked") {
		t.Fatalf("openssl verify -crl_check:\n%s", o)
	}
	f.srv.stop(t)
	if v := mustThiqa(t, f.env, "audit", "verify", "--data", f.dir); !strings.Contains(v.stdout, "audit chain OK") {
		t.Fatalf("audit verify: %s", v.stdout)
	}
}

// TestResponderRenewal: with renewBefore longer than the responder
// certificate's life, the server renews the responder at start (new key on
// the token, new certificate from the CA) and openssl verifies answers
// signed by the new one.
func TestResponderRenewal(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	mustThiqa(t, nil, "init", "--data", dir)
	cfgPath := filepath.Join(dir, "thiqa.yaml")
	y := mustRead(t, cfgPath)
	if !strings.Contains(y, "renewBefore: 48h0m0s") {
		t.Fatalf("thiqa.yaml has no renewBefore: 48h0m0s")
	}
	writeFile(t, cfgPath, strings.Replace(y, "renewBefore: 48h0m0s", "renewBefore: 200h0m0s", 1))
	respPath := filepath.Join(dir, "ca", "ocsp-citizen.pem")
	before := readPEMCert(t, respPath)
	f := &revFixture{dir: dir, tmp: t.TempDir()}
	f.srv = startServer(t, dir, nil)
	waitFor(t, 30*time.Second, func() string {
		if now := readPEMCert(t, respPath); now.SerialNumber.Cmp(before.SerialNumber) == 0 {
			return "the responder certificate was not renewed"
		}
		return ""
	})
	after := readPEMCert(t, respPath)
	if after.NotAfter.Before(before.NotAfter) || bytes.Equal(after.RawSubjectPublicKeyInfo, before.RawSubjectPublicKeyInfo) {
		t.Fatalf("renewed responder: notAfter %v (before %v), same key %v", after.NotAfter, before.NotAfter,
			bytes.Equal(after.RawSubjectPublicKeyInfo, before.RawSubjectPublicKeyInfo))
	}
	f.officer = lastLine(mustThiqa(t, nil, "token", "--data", dir, "--subject", "officer-7", "--role", "registration-officer").stdout)
	f.issue(t, "12345678", "leaf.pem")
	writeFile(t, f.path("responder.pem"), mustRead(t, respPath))
	waitFor(t, 30*time.Second, func() string {
		out := f.ocspCheck(t, true, "-cert", f.path("leaf.pem"), "-VAfile", f.path("responder.pem"))
		if !strings.Contains(out, ": good") {
			return "not signed by the renewed responder yet:\n" + out
		}
		return ""
	})
	f.srv.stop(t)
	if n := countAudit(t, filepath.Join(dir, "thiqa.db"), "key.generate"); n < 5 {
		t.Fatalf("%d key generation records, want the responder keys of init and renewal", n)
	}
}

func TestMayRevoke(t *testing.T) {
	citizenCert := &x509.Certificate{Subject: pkix.Name{SerialNumber: "IDCOM-12345678", CommonName: "A"}}
	sealCert := &x509.Certificate{Subject: pkix.Name{CommonName: "Seal", Names: []pkix.AttributeTypeAndValue{
		{Type: asn1.ObjectIdentifier{2, 5, 4, 97}, Value: "NTROM-1234567"}}}}
	for _, c := range []struct {
		name string
		p    auth.Principal
		cert *x509.Certificate
		want bool
	}{
		{"officer, any certificate", auth.Principal{Roles: []policies.Role{policies.RoleRegistrationOfficer}}, sealCert, true},
		{"citizen, own", auth.Principal{Roles: []policies.Role{policies.RoleCitizen}, CivilNumber: "12345678"}, citizenCert, true},
		{"citizen, another's", auth.Principal{Roles: []policies.Role{policies.RoleCitizen}, CivilNumber: "2345678"}, citizenCert, false},
		{"citizen, suffix only", auth.Principal{Roles: []policies.Role{policies.RoleCitizen}, CivilNumber: "5678"}, citizenCert, false},
		{"citizen without civil number", auth.Principal{Roles: []policies.Role{policies.RoleCitizen}}, citizenCert, false},
		{"agency, own seal", auth.Principal{Roles: []policies.Role{policies.RoleAgency}, OrganizationIdentifier: "NTROM-1234567"}, sealCert, true},
		{"agency, another's seal", auth.Principal{Roles: []policies.Role{policies.RoleAgency}, OrganizationIdentifier: "NTROM-7654321"}, sealCert, false},
		{"agency, a citizen's certificate", auth.Principal{Roles: []policies.Role{policies.RoleAgency}, OrganizationIdentifier: "NTROM-1234567"}, citizenCert, false},
		{"operator", auth.Principal{Roles: []policies.Role{policies.RoleOperator}, CivilNumber: "12345678"}, citizenCert, false},
	} {
		if got := mayRevoke(&c.p, c.cert); got != c.want {
			t.Errorf("%s: %v, want %v", c.name, got, c.want)
		}
	}
}
