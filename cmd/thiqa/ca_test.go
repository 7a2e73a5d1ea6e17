package main

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"database/sql"
	"encoding/json"
	"encoding/pem"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/thiqa/thiqa/ca"
	"github.com/thiqa/thiqa/cmd/thiqa/internal/config"
	"github.com/thiqa/thiqa/internal/testenv"
)

var caNames = []string{"root", "citizen", "organisation", "tsa"}

// post sends a JSON body to path with an optional bearer token.
func (s *server) post(t *testing.T, path, token string, body any) (int, []byte) {
	t.Helper()
	raw, err := json.Marshal(body)
	if err != nil {
		t.Fatal(err)
	}
	req, err := http.NewRequest(http.MethodPost, s.base+path, bytes.NewReader(raw))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b
}

// newTestCSR returns a PEM CSR for a fresh P-256 key.
func newTestCSR(t *testing.T) string {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{}, k)
	if err != nil {
		t.Fatal(err)
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: der}))
}

func citizenSubject() map[string]string {
	return map[string]string{"givenName": "Aisha", "surname": "Al Harthy", "commonName": "Aisha Al Harthy", "civilNumber": "12345678", "country": "OM"}
}

func orgSubject() map[string]string {
	return map[string]string{"organizationName": "Ministry of Health", "organizationIdentifier": "NTROM-1234567", "commonName": "Ministry of Health Seal", "country": "OM"}
}

// opensslVerify checks leaf with `openssl verify` against the data folder's
// root, with the issuing CA as untrusted intermediate.
func opensslVerify(t *testing.T, dir, issuing, leafPEM string) {
	t.Helper()
	leaf := filepath.Join(t.TempDir(), "leaf.pem")
	writeFile(t, leaf, leafPEM)
	out, err := exec.Command(testenv.Tool(t, "openssl"), "verify", "-CAfile", filepath.Join(dir, "ca", "root.pem"),
		"-untrusted", filepath.Join(dir, "ca", issuing+".pem"), leaf).CombinedOutput()
	if err != nil || !strings.Contains(string(out), leaf+": OK") {
		t.Fatalf("openssl verify: %v\n%s", err, out)
	}
}

// issueOK posts an issuance request and checks the 201 answer.
func issueOK(t *testing.T, srv *server, token string, req ca.IssueRequest) ca.IssueResponse {
	t.Helper()
	code, body := srv.post(t, "/api/v1/certificates", token, req)
	var out ca.IssueResponse
	if code != http.StatusCreated || json.Unmarshal(body, &out) != nil || out.Serial == "" || len(out.Chain) != 2 {
		t.Fatalf("issuing %s: %d %s", req.Profile, code, body)
	}
	return out
}

// wantProblem checks a problem answer's status and that its body names want.
func wantProblem(t *testing.T, what string, code int, body []byte, status int, want string) {
	t.Helper()
	if code != status || !strings.Contains(string(body), want) {
		t.Fatalf("%s: got %d %s; want %d naming %q", what, code, body, status, want)
	}
}

// auditCount counts audit records of action with outcome whose actor starts with actorPrefix.
func auditCount(t *testing.T, path, action, outcome, actorPrefix string) int {
	t.Helper()
	db, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var n int
	if err := db.QueryRow("SELECT count(*) FROM audit_log WHERE action = ? AND outcome = ? AND actor LIKE ?", action, outcome, actorPrefix+"%").Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

func TestCAOnSQLite(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	first := mustThiqa(t, nil, "init", "--data", dir)
	pems := map[string]string{}
	for _, n := range caNames {
		pems[n] = mustRead(t, filepath.Join(dir, "ca", n+".pem"))
		if !strings.Contains(first.stdout, "object="+n+"-ca") {
			t.Fatalf("init does not report CA %s:\n%s", n, first.stdout)
		}
	}
	again := mustThiqa(t, nil, "init", "--data", dir)
	if again.stdout != first.stdout {
		t.Fatalf("second init differs:\n%s\n%s", first.stdout, again.stdout)
	}
	for _, n := range caNames {
		if mustRead(t, filepath.Join(dir, "ca", n+".pem")) != pems[n] {
			t.Fatalf("second init replaced %s.pem", n)
		}
	}
	keys := mustThiqa(t, nil, "keys", "list", "--data", dir).stdout
	for _, n := range caNames {
		if strings.Count(keys, "object="+n+"-ca;") != 1 {
			t.Fatalf("want one %s-ca key:\n%s", n, keys)
		}
	}

	srv := startServer(t, dir, nil)
	officer := lastLine(mustThiqa(t, nil, "token", "--data", dir, "--subject", "officer-7", "--role", "registration-officer").stdout)
	citizen := lastLine(mustThiqa(t, nil, "token", "--data", dir, "--subject", "12345678", "--role", "citizen").stdout)

	signing := ca.IssueRequest{Profile: "citizen-signing", Subject: citizenSubject(), CSR: newTestCSR(t)}
	issued := map[string]ca.IssueResponse{}
	for _, c := range []struct {
		req     ca.IssueRequest
		issuing string
	}{
		{signing, "citizen"},
		{ca.IssueRequest{Profile: "citizen-auth", Subject: citizenSubject(), CSR: newTestCSR(t)}, "citizen"},
		{ca.IssueRequest{Profile: "organisation-seal", Subject: orgSubject(), CSR: newTestCSR(t)}, "organisation"},
		{ca.IssueRequest{Profile: "citizen-signing", Subject: citizenSubject(), KeyInHSM: true}, "citizen"},
	} {
		out := issueOK(t, srv, officer, c.req)
		opensslVerify(t, dir, c.issuing, out.Certificate)
		if out.Chain[0] != pems[c.issuing] || out.Chain[1] != pems["root"] {
			t.Fatalf("%s: chain is not issuing CA then root", c.req.Profile)
		}
		if c.req.KeyInHSM != strings.HasPrefix(out.CredentialID, "cred-") {
			t.Fatalf("%s: credentialID %q", c.req.Profile, out.CredentialID)
		}
		issued[c.req.Profile+map[bool]string{true: "/hsm"}[c.req.KeyInHSM]] = out
	}
	cred := issued["citizen-signing/hsm"].CredentialID
	if keys := mustThiqa(t, nil, "keys", "list", "--data", dir).stdout; !strings.Contains(keys, "object="+cred+";") {
		t.Fatalf("credential key %s not on the token:\n%s", cred, keys)
	}

	// Refusals.
	code, _, body := srv.get(t, "/api/v1/certificates/"+issued["citizen-auth"].Serial, citizen)
	wantProblem(t, "read as citizen", code, body, http.StatusForbidden, "certificate.read")
	code, body = srv.post(t, "/api/v1/certificates", citizen, ca.IssueRequest{Profile: "citizen-auth", Subject: citizenSubject(), CSR: newTestCSR(t)})
	wantProblem(t, "citizen issuing", code, body, http.StatusForbidden, "certificate.issue")
	code, body = srv.post(t, "/api/v1/certificates", "", ca.IssueRequest{Profile: "citizen-auth", Subject: citizenSubject(), CSR: newTestCSR(t)})
	wantProblem(t, "no token", code, body, http.StatusUnauthorized, "authentication required")
	bad := citizenSubject()
	bad["civilNumber"] = "12ab5678"
	code, body = srv.post(t, "/api/v1/certificates", officer, ca.IssueRequest{Profile: "citizen-auth", Subject: bad, CSR: newTestCSR(t)})
	wantProblem(t, "bad civil number", code, body, http.StatusBadRequest, `"civilNumber"`)
	extra := citizenSubject()
	extra["organizationName"] = "Nope"
	code, body = srv.post(t, "/api/v1/certificates", officer, ca.IssueRequest{Profile: "citizen-auth", Subject: extra, CSR: newTestCSR(t)})
	wantProblem(t, "extra subject field", code, body, http.StatusBadRequest, "organizationName")
	code, body = srv.post(t, "/api/v1/certificates", officer, ca.IssueRequest{Profile: "king-maker", Subject: citizenSubject(), CSR: newTestCSR(t)})
	wantProblem(t, "unknown profile", code, body, http.StatusBadRequest, "king-maker")
	blk, _ := pem.Decode([]byte(newTestCSR(t)))
	blk.Bytes[len(blk.Bytes)-3] ^= 0x01 // inside the signature
	code, body = srv.post(t, "/api/v1/certificates", officer, ca.IssueRequest{Profile: "citizen-auth", Subject: citizenSubject(), CSR: string(pem.EncodeToMemory(blk))})
	wantProblem(t, "bad CSR signature", code, body, http.StatusBadRequest, "bad-csr")
	code, body = srv.post(t, "/api/v1/certificates", officer, signing)
	wantProblem(t, "replay", code, body, http.StatusConflict, issued["citizen-signing"].Serial)
	code, body = srv.post(t, "/api/v1/certificates", officer, ca.IssueRequest{Profile: "citizen-signing", Subject: bad, KeyInHSM: true})
	wantProblem(t, "keyInHSM with a bad subject", code, body, http.StatusBadRequest, `"civilNumber"`)
	if n := strings.Count(mustThiqa(t, nil, "keys", "list", "--data", dir).stdout, "object=cred-"); n != 1 {
		t.Fatalf("%d credential keys on the token, want 1: a refused keyInHSM request made a key", n)
	}

	// Look-ups.
	code, _, body = srv.get(t, "/api/v1/certificates/"+issued["organisation-seal"].Serial, officer)
	var got ca.CertificateResponse
	if code != http.StatusOK || json.Unmarshal(body, &got) != nil || got.Status != "valid" || got.Certificate != issued["organisation-seal"].Certificate || got.CA != "organisation" {
		t.Fatalf("GET certificate: %d %s", code, body)
	}
	code, _, body = srv.get(t, "/api/v1/certificates/00ff00ff", officer)
	wantProblem(t, "unknown serial", code, body, http.StatusNotFound, "not found")
	rootBlk, _ := pem.Decode([]byte(pems["root"]))
	code, hdr, body := srv.get(t, "/certs/root.crt", "")
	if code != http.StatusOK || !bytes.Equal(body, rootBlk.Bytes) || hdr.Get("Content-Type") != "application/pkix-cert" {
		t.Fatalf("/certs/root.crt: %d %s", code, hdr.Get("Content-Type"))
	}
	if code, _, _ := srv.get(t, "/certs/nothing.crt", ""); code != http.StatusNotFound {
		t.Fatalf("/certs/nothing.crt: %d", code)
	}
	if _, _, body := srv.get(t, "/metrics", ""); !strings.Contains(string(body), `thiqa_ca_issue_phase_seconds_count{phase="sign"} 4`) {
		t.Fatal("/metrics lacks the issuance phases")
	}
	bench := mustThiqa(t, nil, "bench", "issue", "--data", dir, "--url", srv.base, "--requests", "20", "--warmup", "2", "--concurrency", "2", "--raw-duration", "200ms")
	for _, want := range []string{"issued        20 in", " 0 errors", "p50", "raw HSM sign", "ec-p384", "session copy", "ratio", "server CPU", "lint ", "sign "} {
		if !strings.Contains(bench.stdout, want) {
			t.Fatalf("bench issue output lacks %q:\n%s", want, bench.stdout)
		}
	}
	srv.stop(t)

	// The command line issues in-process.
	csrFile, subjFile := filepath.Join(t.TempDir(), "req.csr"), filepath.Join(t.TempDir(), "subject.json")
	writeFile(t, csrFile, newTestCSR(t))
	raw, _ := json.Marshal(orgSubject())
	writeFile(t, subjFile, string(raw))
	cli := mustThiqa(t, nil, "issue", "--data", dir, "--profile", "organisation-seal", "--csr", csrFile, "--subject-file", subjFile)
	opensslVerify(t, dir, "organisation", cli.stdout)
	r := thiqa(t, nil, "issue", "--data", dir, "--profile", "organisation-seal", "--csr", csrFile, "--subject-file", subjFile)
	if line := errorLine(t, r); r.code == 0 || !strings.Contains(line, "already") {
		t.Fatalf("CLI replay: exit %d %q", r.code, line)
	}

	if out := mustThiqa(t, nil, "audit", "verify", "--data", dir); !strings.Contains(out.stdout, "audit chain OK") {
		t.Fatalf("audit verify: %s", out.stdout)
	}
	db := filepath.Join(dir, "thiqa.db")
	for _, c := range []struct {
		action, outcome, actor string
		min                    int
	}{
		{"ca.certificate.create", "success", "thiqa-init", 4},
		{"key.generate", "success", "thiqa-init", 5},
		{"key.generate", "success", "officer-7", 1},
		{"certificate.issue", "success", "officer-7", 4},
		{"certificate.issue", "success", "bench-officer", 22},
		{"certificate.issue", "success", "cli:", 1},
		{"certificate.issue", "refused", "cli:", 1},
		{"certificate.issue", "refused", "officer-7", 6},
		{"certificate.issue", "refused", "anonymous", 1},
		{"certificate.issue", "refused", "12345678", 1},
		{"certificate.read", "refused", "12345678", 1},
		{"certificate.read", "success", "officer-7", 1},
	} {
		if n := auditCount(t, db, c.action, c.outcome, c.actor); n < c.min {
			t.Errorf("%d %s/%s audit records by %s, want at least %d", n, c.action, c.outcome, c.actor, c.min)
		}
	}
}

func TestCAHierarchyProblems(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	initData(t, dir)
	citizenPEM := filepath.Join(dir, "ca", "citizen.pem")
	good := mustRead(t, citizenPEM)
	keysBefore := mustThiqa(t, nil, "keys", "list", "--data", dir).stdout

	// A certificate that does not match its key: serve and init refuse.
	writeFile(t, citizenPEM, mustRead(t, filepath.Join(dir, "ca", "organisation.pem")))
	r := thiqa(t, nil, "serve", "--data", dir, "--addr", "127.0.0.1:0")
	if line := errorLine(t, r); r.code == 0 || !strings.Contains(line, "citizen") || !strings.Contains(line, "match") {
		t.Fatalf("serve with a mismatched CA certificate: exit %d %q", r.code, line)
	}
	r = thiqa(t, nil, "init", "--data", dir)
	if line := errorLine(t, r); r.code == 0 || !strings.Contains(line, "citizen") {
		t.Fatalf("init with a mismatched CA certificate: exit %d %q", r.code, line)
	}

	// A key without its certificate.
	if err := os.Remove(citizenPEM); err != nil {
		t.Fatal(err)
	}
	r = thiqa(t, nil, "init", "--data", dir)
	if line := errorLine(t, r); r.code == 0 || !strings.Contains(line, "citizen.pem is missing") {
		t.Fatalf("init with a missing CA certificate: exit %d %q", r.code, line)
	}
	if _, err := os.Stat(citizenPEM); !os.IsNotExist(err) {
		t.Fatal("init recreated the missing certificate")
	}

	// A certificate without its key (the configuration names another key).
	writeFile(t, citizenPEM, good)
	cfgPath := filepath.Join(dir, "thiqa.yaml")
	writeFile(t, cfgPath, strings.Replace(mustRead(t, cfgPath), "object=citizen-ca", "object=citizen-ca-2", 1))
	r = thiqa(t, nil, "init", "--data", dir)
	if line := errorLine(t, r); r.code == 0 || !strings.Contains(line, "no key") || !strings.Contains(line, "citizen-ca-2") {
		t.Fatalf("init with a certificate but no key: exit %d %q", r.code, line)
	}
	if keys := mustThiqa(t, nil, "keys", "list", "--data", dir).stdout; keys != keysBefore {
		t.Fatalf("a refused init changed the token:\n%s\n%s", keysBefore, keys)
	}
	if mustRead(t, citizenPEM) != good {
		t.Fatal("a refused init replaced a certificate")
	}
	mustThiqa(t, nil, "audit", "verify", "--data", dir)
}

func TestCAOnPostgresWithRSARoot(t *testing.T) {
	dsn := testenv.PostgresDSN(t)
	dir := filepath.Join(t.TempDir(), "data")
	conf := editedConfig(t, dir, func(y string) string {
		y = strings.Replace(y, "driver: sqlite\n  dsn: thiqa.db\n  dsnEnv: \"\"", "driver: postgres\n  dsn: \"\"\n  dsnEnv: THIQA_TEST_DSN", 1)
		return strings.Replace(y, "keyType: ec-p384", "keyType: rsa-3072", 1) // the root
	})
	env := []string{"THIQA_TEST_DSN=" + dsn}
	mustThiqa(t, env, "init", "--data", dir, "--config", conf)
	mustThiqa(t, env, "init", "--data", dir)
	blk, _ := pem.Decode([]byte(mustRead(t, filepath.Join(dir, "ca", "root.pem"))))
	root, err := x509.ParseCertificate(blk.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	if k, ok := root.PublicKey.(*rsa.PublicKey); !ok || k.N.BitLen() != 3072 {
		t.Fatalf("root key is %T, want RSA 3072", root.PublicKey)
	}
	srv := startServer(t, dir, env)
	officer := lastLine(mustThiqa(t, nil, "token", "--data", dir, "--subject", "officer-9", "--role", "registration-officer").stdout)
	seal := ca.IssueRequest{Profile: "organisation-seal", Subject: orgSubject(), CSR: newTestCSR(t), RequestID: "pg-1"}
	out := issueOK(t, srv, officer, seal)
	opensslVerify(t, dir, "organisation", out.Certificate)
	seal.CSR = newTestCSR(t) // same request ID, another key
	code, body := srv.post(t, "/api/v1/certificates", officer, seal)
	wantProblem(t, "request ID replay", code, body, http.StatusConflict, "pg-1")
	hsmKey := issueOK(t, srv, officer, ca.IssueRequest{Profile: "citizen-auth", Subject: citizenSubject(), KeyInHSM: true})
	opensslVerify(t, dir, "citizen", hsmKey.Certificate)
	code, _, body = srv.get(t, "/api/v1/certificates/"+out.Serial, officer)
	if code != http.StatusOK || !strings.Contains(string(body), `"status":"valid"`) {
		t.Fatalf("GET certificate: %d %s", code, body)
	}
	srv.stop(t)
	if v := mustThiqa(t, env, "audit", "verify", "--data", dir); !strings.Contains(v.stdout, "audit chain OK") {
		t.Fatalf("audit verify: %s", v.stdout)
	}
}

func TestCAConfigValidate(t *testing.T) {
	dir := t.TempDir()
	base, err := config.Default(dir).Marshal()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := config.Parse(base, dir); err != nil {
		t.Fatalf("default configuration: %v", err)
	}
	for _, c := range []struct{ from, to, want string }{
		{"keyType: ec-p384", "keyType: rsa-2048", "ca.root.keyType"},
		{"object=citizen-ca", "", "ca.issuers[0]"},
		{"name: tsa", "name: citizen", "ca.issuers[2].name"},
		{"validity: 7300d", "validity: forever", "ca.root.validity"},
		{"subjectKeyType: ec-p256", "subjectKeyType: dsa", "ca.subjectKeyType"},
	} {
		y := strings.Replace(string(base), c.from, c.to, 1)
		if c.to == "" { // drop the key URI
			y = strings.Replace(string(base), "key: pkcs11:token=thiqa;"+c.from, "key: citizen", 1)
		}
		if y == string(base) {
			t.Fatalf("configuration has no %q", c.from)
		}
		if _, err := config.Parse([]byte(y), dir); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s -> %s: %v; want an error naming %s", c.from, c.to, err, c.want)
		}
	}
	// No ca section: no CA, still valid.
	cut := string(base)[:strings.Index(string(base), "\nca:")+1]
	if cfg, err := config.Parse([]byte(cut), dir); err != nil || cfg.CA.Enabled() {
		t.Fatalf("configuration without a ca section: %v", err)
	}
}
