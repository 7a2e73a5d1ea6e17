package main

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/thiqa/thiqa/ca"
	"github.com/thiqa/thiqa/internal/testenv"
)

// postWithHeaders posts a JSON body with a bearer token and returns the
// status, the headers and the body.
func postWithHeaders(t *testing.T, srv *server, path, token string, body any) (int, http.Header, []byte) {
	t.Helper()
	raw, err := json.Marshal(body)
	if err != nil {
		t.Fatal(err)
	}
	req, err := http.NewRequest(http.MethodPost, srv.base+path, bytes.NewReader(raw))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, b
}

// TestServeOnFullToken runs `thiqa serve` with its SoftHSM token folder on
// a disk of its own that fills up (the database has space): a keyInHSM
// issuance and a {"rekey": true} renewal are answered "try again later"
// (503 with Retry-After), not 500; no certificate and no credential key is
// left for them; the refusals are audited, counted
// (thiqa_hsm_token_full_total) and the log says to free space on the
// token; once space is freed the same requests succeed without a restart.
func TestServeOnFullToken(t *testing.T) {
	disk := testenv.NewSmallDisk(t, 8<<20)
	dir := filepath.Join(t.TempDir(), "data")
	if err := os.MkdirAll(filepath.Join(disk.Dir, "tokens"), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	// The token folder (hsm.softhsm.tokenDir, "tokens") lives on the small disk.
	if err := os.Symlink(filepath.Join(disk.Dir, "tokens"), filepath.Join(dir, "tokens")); err != nil {
		t.Fatal(err)
	}
	mustThiqa(t, nil, "init", "--data", dir)
	srv := startServer(t, dir, nil)
	officer := lastLine(mustThiqa(t, nil, "token", "--data", dir, "--subject", "officer-7", "--role", "registration-officer").stdout)
	first := issueOK(t, srv, officer, ca.IssueRequest{Profile: "citizen-auth", Subject: citizenSubject(), KeyInHSM: true})
	credKeys := func() int {
		return strings.Count(mustThiqa(t, nil, "keys", "list", "--data", dir).stdout, "object=cred-")
	}
	certs := func() int {
		db := filepath.Join(dir, "thiqa.db")
		return auditCount(t, db, "certificate.issue", "success", "officer-7")
	}
	keysBefore, certsBefore := credKeys(), certs()

	disk.Fill(t)
	code, hdr, body := postWithHeaders(t, srv, "/api/v1/certificates", officer, ca.IssueRequest{Profile: "citizen-auth", Subject: citizenSubject(), KeyInHSM: true})
	if code != http.StatusServiceUnavailable || hdr.Get("Retry-After") == "" || !strings.Contains(hdr.Get("Content-Type"), "problem+json") {
		t.Fatalf("keyInHSM on a full token: %d Retry-After %q %s", code, hdr.Get("Retry-After"), body)
	}
	code, hdr, body = postWithHeaders(t, srv, "/api/v1/certificates/"+first.Serial+"/renew", officer, map[string]any{"rekey": true})
	if code != http.StatusServiceUnavailable || hdr.Get("Retry-After") == "" {
		t.Fatalf("re-key on a full token: %d Retry-After %q %s", code, hdr.Get("Retry-After"), body)
	}
	if _, _, m := srv.get(t, "/metrics", ""); !strings.Contains(string(m), "thiqa_hsm_token_full_total 2") {
		t.Error("/metrics does not count the two key generations the token could not store")
	}
	if !strings.Contains(srv.stderr.String(), "free space on the token") {
		t.Error("the log does not say to free space on the token")
	}
	db := filepath.Join(dir, "thiqa.db")
	if n := auditCount(t, db, "certificate.issue", "failure", "officer-7"); n != 1 {
		t.Errorf("%d audited failed issuances, want 1", n)
	}
	if n := auditCount(t, db, "certificate.renew", "failure", "officer-7"); n != 1 {
		t.Errorf("%d audited failed renewals, want 1", n)
	}
	if credKeys() != keysBefore || certs() != certsBefore {
		t.Fatal("a refused request left a key or a certificate")
	}

	disk.Free(t)
	again := issueOK(t, srv, officer, ca.IssueRequest{Profile: "citizen-auth", Subject: citizenSubject(), KeyInHSM: true})
	if again.CredentialID == "" || credKeys() != keysBefore+1 {
		t.Fatalf("after space was freed: credential %q, %d keys", again.CredentialID, credKeys())
	}
	code, _, body = postWithHeaders(t, srv, "/api/v1/certificates/"+first.Serial+"/renew", officer, map[string]any{"rekey": true})
	if code != http.StatusCreated {
		t.Fatalf("re-key after space was freed: %d %s", code, body)
	}
	srv.stop(t)
}
