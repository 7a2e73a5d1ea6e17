package main

import (
	"encoding/json"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/thiqa/thiqa/ca"
	"github.com/thiqa/thiqa/ca/revocation"
	"github.com/thiqa/thiqa/internal/testenv"
)

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
		time.Sleep(50 * time.Millisecond)
	}
}

// TestRevocationThroughTheBinary is the end-to-end check of the wiring of
// ca/revocation (whose own tests cover the service on SQLite and
// PostgreSQL): init writes each issuing CA's OCSP responder, serve refuses
// a revocation.ocsp.renewBefore as long as the responder certificates'
// life and issues a responder that is missing at start, mounts the
// revocation API behind auth and OCSP, and polls for what `thiqa revoke`
// records; openssl ocsp checks the answers.
func TestRevocationThroughTheBinary(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	tmp := t.TempDir()
	initData(t, dir)
	for _, name := range []string{"citizen", "organisation", "tsa"} {
		if _, err := os.Stat(filepath.Join(dir, "ca", "ocsp-"+name+".pem")); err != nil {
			t.Fatalf("init wrote no OCSP responder certificate for %s: %v", name, err)
		}
	}
	cfgPath := filepath.Join(dir, "thiqa.yaml")
	y := mustRead(t, cfgPath)
	if !strings.Contains(y, "renewBefore: 48h0m0s") {
		t.Fatalf("thiqa.yaml has no renewBefore: 48h0m0s")
	}
	// 200h would renew the 7-day responder certificates at every check.
	writeFile(t, cfgPath, strings.Replace(y, "renewBefore: 48h0m0s", "renewBefore: 200h0m0s", 1))
	if r := thiqa(t, nil, "serve", "--data", dir); r.code == 0 || !strings.Contains(r.stderr, "revocation.ocsp.renewBefore") {
		t.Fatalf("serve with renewBefore 200h: exit %d\n%s", r.code, r.stderr)
	}
	writeFile(t, cfgPath, y)
	respPath := filepath.Join(dir, "ca", "ocsp-citizen.pem")
	before := mustRead(t, respPath)
	if err := os.Remove(respPath); err != nil {
		t.Fatal(err)
	}
	srv := startServer(t, dir, nil)
	waitFor(t, 30*time.Second, func() string {
		if now, err := os.ReadFile(respPath); err != nil || string(now) == before {
			return "the responder certificate was not renewed"
		}
		return ""
	})
	ocspCheck := func(name string) string {
		t.Helper()
		args := []string{"ocsp", "-issuer", filepath.Join(dir, "ca", "citizen.pem"), "-url", srv.base + "/ocsp",
			"-CAfile", filepath.Join(dir, "ca", "root.pem"), "-VAfile", respPath, "-nonce", "-cert", filepath.Join(tmp, name)}
		out, err := exec.Command(testenv.Tool(t, "openssl"), args...).CombinedOutput()
		if err != nil || !strings.Contains(string(out), "Response verify OK") {
			t.Fatalf("openssl %v: %v\n%s", args, err, out)
		}
		return string(out)
	}
	officer := lastLine(mustThiqa(t, nil, "token", "--data", dir, "--subject", "officer-7", "--role", "registration-officer").stdout)
	issue := func(civil, name string) string {
		sub := citizenSubject()
		sub["civilNumber"] = civil
		out := issueOK(t, srv, officer, ca.IssueRequest{Profile: "citizen-signing", Subject: sub, CSR: newTestCSR(t)})
		writeFile(t, filepath.Join(tmp, name), out.Certificate)
		return out.Serial
	}
	leaf, byCLI := issue("12345678", "leaf.pem"), issue("45678901", "cli.pem")
	waitFor(t, 30*time.Second, func() string {
		if out := ocspCheck("leaf.pem"); !strings.Contains(out, ": good") {
			return "not signed by the renewed responder yet:\n" + out
		}
		return ""
	})

	// The API, behind auth.
	code, body := srv.post(t, "/api/v1/certificates/"+leaf+"/revoke", "", revocation.RevokeRequest{Reason: "keyCompromise"})
	wantProblem(t, "unauthenticated", code, body, http.StatusUnauthorized, "")
	code, body = srv.post(t, "/api/v1/certificates/"+leaf+"/revoke", officer, revocation.RevokeRequest{Reason: "keyCompromise"})
	var rr revocation.RevokeResponse
	if code != http.StatusOK || json.Unmarshal(body, &rr) != nil || rr.Status != "revoked" || rr.Reason != "keyCompromise" || rr.CA != "citizen" {
		t.Fatalf("revoke: %d %s", code, body)
	}
	if out := ocspCheck("leaf.pem"); !strings.Contains(out, ": revoked") || !strings.Contains(out, "Reason: keyCompromise") {
		t.Fatalf("want revoked (keyCompromise):\n%s", out)
	}

	// `thiqa revoke` while the server runs: the server learns of it by polling.
	r := mustThiqa(t, nil, "revoke", "--data", dir, "--serial", byCLI, "--reason", "superseded")
	if !strings.Contains(r.stdout, "revoked "+byCLI) {
		t.Fatalf("thiqa revoke: %s", r.stdout)
	}
	waitFor(t, 15*time.Second, func() string {
		if out := ocspCheck("cli.pem"); !strings.Contains(out, ": revoked") {
			return "the answer is still not revoked after thiqa revoke:\n" + out
		}
		return ""
	})
	r = thiqa(t, nil, "revoke", "--data", dir, "--serial", byCLI, "--reason", "superseded")
	if r.code != 1 || !strings.Contains(errorLine(t, r), "already revoked") {
		t.Fatalf("revoking twice from the CLI: exit %d %s", r.code, r.stderr)
	}
	if r := thiqa(t, nil, "revoke", "--data", dir, "--serial", byCLI, "--reason", "certificateHold"); r.code != 2 {
		t.Fatalf("thiqa revoke --reason certificateHold: exit %d", r.code)
	}
	srv.stop(t)

	if v := mustThiqa(t, nil, "audit", "verify", "--data", dir); !strings.Contains(v.stdout, "audit chain OK") {
		t.Fatalf("audit verify: %s", v.stdout)
	}
	db := filepath.Join(dir, "thiqa.db")
	if n := auditCount(t, db, "certificate.revoke", "success", ""); n != 2 {
		t.Fatalf("%d successful revocation records, want 2", n)
	}
	if n := auditCount(t, db, "certificate.revoke", "refused", ""); n != 2 {
		t.Fatalf("%d refused revocation records (401, 409 from the CLI), want 2", n)
	}
	if n := countAudit(t, db, "key.generate"); n < 5 {
		t.Fatalf("%d key generation records, want the responder keys of init and renewal", n)
	}
}
