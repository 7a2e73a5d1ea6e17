package main

import (
	"bytes"
	"database/sql"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/thiqa/thiqa/ca"
	"github.com/thiqa/thiqa/internal/samplepdf"
	"github.com/thiqa/thiqa/internal/testenv"
	"github.com/thiqa/thiqa/signing"
)

// signFixture is a running `thiqa serve` whose publicBaseURL is its real
// address, so that `thiqa verify` fetches revocation data from it.
type signFixture struct {
	dir, tmp, port string
	srv            *server
	officer        string
}

func freePort(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return strconv.Itoa(ln.Addr().(*net.TCPAddr).Port)
}

func newSignFixture(t *testing.T) *signFixture {
	t.Helper()
	f := &signFixture{dir: filepath.Join(t.TempDir(), "data"), tmp: t.TempDir(), port: freePort(t)}
	conf := editedConfig(t, f.dir, func(y string) string { return strings.ReplaceAll(y, "127.0.0.1:8080", "127.0.0.1:"+f.port) })
	mustThiqa(t, nil, "init", "--data", f.dir, "--config", conf)
	f.start(t)
	f.officer = f.token(t, "officer-7", "registration-officer")
	return f
}

func (f *signFixture) start(t *testing.T) {
	t.Helper()
	f.srv = startServerAt(t, f.dir, "127.0.0.1:"+f.port, "http://127.0.0.1:"+f.port)
}

func (f *signFixture) token(t *testing.T, subject, role string) string {
	t.Helper()
	return lastLine(mustThiqa(t, nil, "token", "--data", f.dir, "--subject", subject, "--role", role).stdout)
}

func (f *signFixture) path(name string) string { return filepath.Join(f.tmp, name) }

// credential issues a keyInHSM certificate and returns its credential ID.
func (f *signFixture) credential(t *testing.T, profile string, subject map[string]string) string {
	t.Helper()
	out := issueOK(t, f.srv, f.officer, ca.IssueRequest{Profile: profile, Subject: subject, KeyInHSM: true})
	if out.CredentialID == "" {
		t.Fatalf("issued %s without a credential ID", profile)
	}
	return out.CredentialID
}

// send posts body to path with a bearer token and extra headers.
func (f *signFixture) send(t *testing.T, path, token, ctype string, body []byte, hdr map[string]string) (int, http.Header, []byte) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, f.srv.base+path, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", ctype)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, b
}

// csc posts a JSON body and decodes the JSON answer.
func (f *signFixture) csc(t *testing.T, path, token string, body any) (int, map[string]any) {
	t.Helper()
	raw, _ := json.Marshal(body)
	code, _, b := f.send(t, path, token, "application/json", raw, nil)
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatalf("%s: %d %s", path, code, b)
	}
	return code, m
}

func samplePDF(t *testing.T, size int64) []byte {
	t.Helper()
	var b bytes.Buffer
	if err := samplepdf.Write(&b, size); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// checkPDF runs qpdf --check and `thiqa verify` (TOTAL-PASSED at level,
// revocation data fetched from the server). The independent verifiers
// judge the service's documents in package signing's tests.
func (f *signFixture) checkPDF(t *testing.T, name string, pdf []byte, level string) {
	t.Helper()
	p := f.path(name)
	if err := os.WriteFile(p, pdf, 0o600); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(testenv.Tool(t, "qpdf"), "--check", p).CombinedOutput(); err != nil || !strings.Contains(string(out), "No syntax or stream encoding errors") {
		t.Fatalf("%s: qpdf --check: %v\n%s", name, err, out)
	}
	rep := vfyReport(t, 0, p, "--data", f.dir)
	if sig := signatureOf(t, rep); rep.Indication != "TOTAL-PASSED" || sig.Level != level || sig.Indication != "TOTAL-PASSED" {
		t.Fatalf("%s: thiqa verify: %s, signature %s at %s; want TOTAL-PASSED at %s", name, rep.Indication, sig.Indication, sig.Level, level)
	}
}

// TestSigningThroughTheBinary is the end-to-end check of the signing
// service as `thiqa serve` wires it (the service itself is tested in
// package signing): a B-LT seal over HTTP whose time-stamp, OCSP responses
// and CRLs come from the server's own services in process, the operator's
// `thiqa seal`, the citizen's `thiqa sign`, and the configured TSA and
// timeout. The authorisation matrix (authz_test.go) drives every route.
func TestSigningThroughTheBinary(t *testing.T) {
	f := newSignFixture(t)
	agency := f.token(t, "NTROM-1234567", "agency")
	cred := f.credential(t, "organisation-seal", orgSubject())
	pdf := samplePDF(t, 100<<10)
	code, hdr, body := vfySend(t, f.srv, "/api/v1/seal?level=B-LT&credential="+cred, agency, "application/pdf", pdf)
	if code != http.StatusOK || !bytes.HasPrefix(body, pdf[:len(pdf)-10]) || len(hdr.Get(signing.DigestHeader)) != 64 {
		t.Fatalf("seal B-LT: %d %.300s", code, body)
	}
	f.checkPDF(t, "sealed-B-LT.pdf", body, "B-LT")
	// The signature time-stamp came from the server's own TSA in process.
	dbPath := filepath.Join(f.dir, "thiqa.db")
	if n := tokensRequestedBy(t, dbPath, inProcessRequester); n < 1 {
		t.Fatalf("%d in-process time-stamp tokens recorded, want at least 1", n)
	}

	// The operator's CLI.
	in, enc := f.path("plain.pdf"), f.path("enc.pdf")
	writeFile(t, in, string(pdf))
	if out, err := exec.Command(testenv.Tool(t, "qpdf"), "--encrypt", "user", "owner", "256", "--", in, enc).CombinedOutput(); err != nil {
		t.Fatalf("qpdf --encrypt: %v\n%s", err, out)
	}
	mustThiqa(t, nil, "seal", "--data", f.dir, "--credential", cred, "--level", "B-T", "--in", in, "--out", f.path("cli.pdf"))
	f.checkPDF(t, "cli.pdf", []byte(mustRead(t, f.path("cli.pdf"))), "B-T")
	r := thiqa(t, nil, "seal", "--data", f.dir, "--credential", cred, "--level", "B-B", "--in", enc, "--out", f.path("cli-enc.pdf"))
	if r.code != 1 || !strings.Contains(r.stderr, "encrypt") {
		t.Fatalf("CLI sealing an encrypted PDF: %d %s", r.code, r.stderr)
	}
	if _, err := os.Stat(f.path("cli-enc.pdf")); err == nil {
		t.Fatal("the CLI wrote an output for a refused document")
	}
	if n := auditCount(t, dbPath, signing.ActionSeal, "refused", "cli:"); n != 1 {
		t.Fatalf("%d refused operator seal records, want 1", n)
	}

	// The citizen's CLI, PIN from the environment.
	citizen := f.token(t, "12345678", "citizen")
	ccred := f.credential(t, "citizen-signing", citizenSubject())
	if code, body := f.srv.post(t, "/api/v1/credentials/"+ccred+"/pin", citizen, signing.PINRequest{PIN: "482916"}); code != 201 {
		t.Fatalf("set PIN: %d %s", code, body)
	}
	writeFile(t, f.path("citizen.jwt"), citizen)
	mustThiqa(t, []string{"SIGNING_PIN=482916"}, "sign", "--url", f.srv.base, "--token-file", f.path("citizen.jwt"), "--credential", ccred,
		"--pin-env", "SIGNING_PIN", "--level", "B-B", "--in", in, "--out", f.path("cli-signed.pdf"))
	f.checkPDF(t, "cli-signed.pdf", []byte(mustRead(t, f.path("cli-signed.pdf"))), "B-B")
	r = thiqa(t, []string{"SIGNING_PIN=000000"}, "sign", "--url", f.srv.base, "--token-file", f.path("citizen.jwt"), "--credential", ccred,
		"--pin-env", "SIGNING_PIN", "--level", "B-B", "--in", in, "--out", f.path("cli-wrong.pdf"))
	if r.code != 1 || !strings.Contains(r.stderr, "refused (403)") || !strings.Contains(r.stderr, "wrong PIN") {
		t.Fatalf("CLI signing with a wrong PIN: %d %s", r.code, r.stderr)
	}

	// signing.tsaURL and signing.timeout: a TSA that never answers is a
	// quick 504, nothing signed; B-B still works.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			defer c.Close() // accept and never answer
		}
	}()
	f.srv.stop(t)
	conf := filepath.Join(f.dir, "thiqa.yaml")
	writeFile(t, conf, strings.Replace(mustRead(t, conf), "signing:\n  timeout: 10s", "signing:\n  tsaURL: http://"+ln.Addr().String()+"/tsa\n  timeout: 2s", 1))
	f.start(t)
	start := time.Now()
	code, _, body = vfySend(t, f.srv, "/api/v1/seal?level=B-T&credential="+cred, agency, "application/pdf", samplePDF(t, 4096))
	if code != http.StatusGatewayTimeout || time.Since(start) > 8*time.Second || bytes.HasPrefix(body, []byte("%PDF")) {
		t.Fatalf("seal with a silent TSA: %d after %s: %.200s", code, time.Since(start), body)
	}
	code, _, body = vfySend(t, f.srv, "/api/v1/seal?level=B-B&credential="+cred, agency, "application/pdf", samplePDF(t, 4096))
	if code != http.StatusOK {
		t.Fatalf("B-B with a silent TSA: %d %.200s", code, body)
	}
	if code, _, body := f.srv.get(t, "/metrics", ""); code != 200 ||
		!strings.Contains(string(body), `thiqa_signing_operations_total{level="B-T",operation="seal",outcome="failure"} 1`) ||
		!strings.Contains(string(body), `thiqa_signing_operations_total{level="B-B",operation="seal",outcome="success"} 1`) {
		t.Fatalf("metrics: %d\n%s", code, body)
	}
	f.srv.stop(t)
	mustThiqa(t, nil, "audit", "verify", "--data", f.dir)
}

// tokensRequestedBy counts the time-stamp tokens the audit log records as
// requested by requester (a record may hold one token or several).
func tokensRequestedBy(t *testing.T, path, requester string) int {
	t.Helper()
	db, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	rows, err := db.Query("SELECT details FROM audit_log WHERE action = 'timestamp.issue' AND outcome = 'success'")
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	n := 0
	for rows.Next() {
		var d string
		if err := rows.Scan(&d); err != nil {
			t.Fatal(err)
		}
		n += strings.Count(d, `"requester":"`+requester+`"`)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return n
}
