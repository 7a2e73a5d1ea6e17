package main

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"database/sql"
	"encoding/asn1"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"math/big"
	"mime/multipart"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/thiqa/thiqa/ca"
	"github.com/thiqa/thiqa/internal/samplepdf"
	"github.com/thiqa/thiqa/internal/testenv"
	"github.com/thiqa/thiqa/signer"
)

// signFixture is a running server whose publicBaseURL is its real address,
// so that pdfsig can reach the OCSP responder named in the certificates.
type signFixture struct {
	dir, tmp, nss string
	env           []string
	srv           *server
	port          string
	officer       string
	sealCred      string
	serials       map[string]string // credential ID → certificate serial
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

func newSignFixture(t *testing.T, postgres bool, keyType ...string) *signFixture {
	t.Helper()
	f := &signFixture{dir: filepath.Join(t.TempDir(), "data"), tmp: t.TempDir(), port: freePort(t)}
	if postgres {
		f.env = []string{"THIQA_TEST_DSN=" + testenv.PostgresDSN(t)}
	}
	conf := editedConfig(t, f.dir, func(y string) string {
		y = strings.ReplaceAll(y, "127.0.0.1:8080", "127.0.0.1:"+f.port)
		if len(keyType) > 0 {
			y = strings.Replace(y, "subjectKeyType: ec-p256", "subjectKeyType: "+keyType[0], 1)
		}
		if postgres {
			y = strings.Replace(y, "driver: sqlite\n  dsn: thiqa.db\n  dsnEnv: \"\"", "driver: postgres\n  dsn: \"\"\n  dsnEnv: THIQA_TEST_DSN", 1)
		}
		return y
	})
	mustThiqa(t, f.env, "init", "--data", f.dir, "--config", conf)
	f.start(t)
	f.officer = lastLine(mustThiqa(t, f.env, "token", "--data", f.dir, "--subject", "officer-7", "--role", "registration-officer").stdout)
	// An NSS database trusting the root, for pdfsig.
	f.nss = filepath.Join(f.tmp, "nss")
	if err := os.MkdirAll(f.nss, 0o700); err != nil {
		t.Fatal(err)
	}
	certutil := testenv.Tool(t, "certutil")
	for _, args := range [][]string{
		{"-N", "-d", "sql:" + f.nss, "--empty-password"},
		{"-A", "-n", "thiqa-root", "-t", "CT,C,C", "-i", filepath.Join(f.dir, "ca", "root.pem"), "-d", "sql:" + f.nss},
	} {
		if out, err := exec.Command(certutil, args...).CombinedOutput(); err != nil {
			t.Fatalf("certutil %v: %v\n%s", args, err, out)
		}
	}
	return f
}

func (f *signFixture) start(t *testing.T) {
	t.Helper()
	ready := filepath.Join(t.TempDir(), "ready")
	cmd := exec.Command(thiqaBin, "serve", "--data", f.dir, "--addr", "127.0.0.1:"+f.port, "--ready-file", ready)
	cmd.Env = append(os.Environ(), f.env...)
	var errb bytes.Buffer
	cmd.Stderr = &errb
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	f.srv = &server{cmd: cmd, stderr: &errb, base: "http://127.0.0.1:" + f.port}
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
		}
	})
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if _, err := os.Stat(ready); err == nil {
			return
		}
	}
	t.Fatalf("thiqa serve did not become ready:\n%s", errb.String())
}

func (f *signFixture) token(t *testing.T, subject, role string) string {
	t.Helper()
	return lastLine(mustThiqa(t, f.env, "token", "--data", f.dir, "--subject", subject, "--role", role).stdout)
}

func (f *signFixture) path(name string) string { return filepath.Join(f.tmp, name) }

// credential issues a keyInHSM certificate and returns its credential ID.
func (f *signFixture) credential(t *testing.T, profile string, subject map[string]string) (string, *x509.Certificate) {
	t.Helper()
	out := issueOK(t, f.srv, f.officer, ca.IssueRequest{Profile: profile, Subject: subject, KeyInHSM: true})
	blk, _ := pem.Decode([]byte(out.Certificate))
	cert, err := x509.ParseCertificate(blk.Bytes)
	if err != nil || out.CredentialID == "" {
		t.Fatalf("issued %s: %v %q", profile, err, out.CredentialID)
	}
	if f.serials == nil {
		f.serials = map[string]string{}
	}
	f.serials[out.CredentialID] = out.Serial
	return out.CredentialID, cert
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

// checkPDF runs pdfsig (valid and trusted, reading its text), qpdf --check
// and openssl cms -verify over the first signature's ByteRange.
func (f *signFixture) checkPDF(t *testing.T, name string, pdf []byte, issuing, level string) {
	t.Helper()
	p := f.path(name)
	if err := os.WriteFile(p, pdf, 0o600); err != nil {
		t.Fatal(err)
	}
	br := regexp.MustCompile(`/ByteRange\s*\[\s*(\d+)\s+(\d+)\s+(\d+)\s+(\d+)\s*\]`).FindSubmatch(pdf)
	if br == nil {
		t.Fatalf("%s: no ByteRange", name)
	}
	n := make([]int, 4)
	for i := range n {
		n[i], _ = strconv.Atoi(string(br[i+1]))
	}
	// pdfsig cannot validate document time-stamps (and then gives up on
	// every signature): check the first signature's own revision.
	first := p
	if bytes.Contains(pdf, []byte("/ETSI.RFC3161")) {
		first = f.path("rev1-" + name)
		if err := os.WriteFile(first, pdf[:n[2]+n[3]], 0o600); err != nil {
			t.Fatal(err)
		}
	}
	out, _ := exec.Command(testenv.Tool(t, "pdfsig"), "-nssdir", "sql:"+f.nss, first).CombinedOutput()
	if !strings.Contains(string(out), "Signature is Valid.") || !strings.Contains(string(out), "Certificate is Trusted.") {
		t.Fatalf("%s: pdfsig:\n%s", name, out)
	}
	if out, err := exec.Command(testenv.Tool(t, "qpdf"), "--check", p).CombinedOutput(); err != nil || !strings.Contains(string(out), "No syntax or stream encoding errors") {
		t.Fatalf("%s: qpdf --check: %v\n%s", name, err, out)
	}
	content := append(append([]byte(nil), pdf[n[0]:n[0]+n[1]]...), pdf[n[2]:n[2]+n[3]]...)
	hexSig := strings.Trim(string(pdf[n[0]+n[1]:n[2]]), "<> \n")
	der := make([]byte, len(hexSig)/2)
	if _, err := fmt.Sscanf(hexSig, "%x", &der); err != nil {
		t.Fatalf("%s: /Contents: %v", name, err)
	}
	var rv asn1.RawValue
	if _, err := asn1.Unmarshal(der, &rv); err != nil {
		t.Fatalf("%s: CMS: %v", name, err)
	}
	sigPath, contentPath := f.path(name+".p7s"), f.path(name+".content")
	_ = os.WriteFile(sigPath, rv.FullBytes, 0o600)
	_ = os.WriteFile(contentPath, content, 0o600)
	cms, err := exec.Command(testenv.Tool(t, "openssl"), "cms", "-verify", "-binary", "-inform", "DER", "-in", sigPath, "-content", contentPath,
		"-CAfile", filepath.Join(f.dir, "ca", "root.pem"), "-certfile", filepath.Join(f.dir, "ca", issuing+".pem"), "-purpose", "any", "-out", os.DevNull).CombinedOutput()
	if err != nil || !strings.Contains(string(cms), "Verification successful") {
		t.Fatalf("%s: openssl cms -verify: %v\n%s", name, err, cms)
	}
	// The project's own verifier: TOTAL-PASSED at the requested level.
	r := thiqa(t, f.env, "verify", p, "--data", f.dir, "--json")
	var rep struct {
		Indication string `json:"indication"`
		Signatures []struct {
			Level      string `json:"level"`
			Indication string `json:"indication"`
		} `json:"signatures"`
	}
	if r.code != 0 || json.Unmarshal([]byte(r.stdout), &rep) != nil || rep.Indication != "TOTAL-PASSED" || len(rep.Signatures) == 0 ||
		rep.Signatures[0].Level != level || rep.Signatures[0].Indication != "TOTAL-PASSED" {
		t.Fatalf("%s: thiqa verify (want %s, TOTAL-PASSED): exit %d\n%.2000s\n%s", name, level, r.code, r.stdout, r.stderr)
	}
}

// certifiedNoChanges certifies pdf with DocMDP P=1 (no changes allowed)
// using a throwaway in-process key.
func certifiedNoChanges(t *testing.T, pdf []byte) []byte {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(7), Subject: pkix.Name{CommonName: "Certifier"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), KeyUsage: x509.KeyUsageDigitalSignature}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	out, err := signer.SignBytes(context.Background(), pdf, signer.Options{Signer: key, Chain: []*x509.Certificate{cert}, DocMDP: 1})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func wantStatus(t *testing.T, what string, code int, body []byte, status int, text string) {
	t.Helper()
	if code != status || !strings.Contains(string(body), text) {
		t.Fatalf("%s: got %d %s; want %d naming %q", what, code, body, status, text)
	}
}

func TestSigningOnSQLite(t *testing.T) {
	f := newSignFixture(t, false)
	runSealing(t, f, []string{"B-B", "B-T", "B-LT", "B-LTA"})
	runCitizenSigning(t, f)

	// Refusals, each audited.
	dbPath := filepath.Join(f.dir, "thiqa.db")
	// The signature time-stamps came from the server's own TSA in process,
	// each recorded by the TSA (B-T, B-LT, B-LTA twice, the batch's two, the
	// citizen's B-T at least).
	if n := tokensRequestedBy(t, dbPath, inProcessRequester); n < 7 {
		t.Fatalf("%d in-process time-stamp tokens recorded, want at least 7", n)
	}
	if n := auditCount(t, dbPath, actionPrepare, "success", "12345678"); n != 1 {
		t.Fatalf("%d prepare records, want 1", n)
	}
	// Every seal record names the digest algorithm of its document digest.
	if n, bad := sealRecordsHashes(t, dbPath); n < 6 || bad > 0 {
		t.Fatalf("%d seal records with a document digest, %d of them without \"hash\":\"SHA-256\"", n, bad)
	}
	if n := auditCount(t, dbPath, actionSeal, "refused", ""); n < 4 {
		t.Fatalf("%d refused seal records, want at least 4", n)
	}
	if n := auditCount(t, dbPath, actionSeal, "success", "NTROM-1234567"); n < 6 {
		t.Fatalf("%d seal records, want at least 6", n)
	}
	if n := auditCount(t, dbPath, actionSignHash, "success", "12345678"); n != 1 {
		t.Fatalf("%d signHash records, want 1", n)
	}

	// An unreachable TSA: a quick 504, nothing signed; B-B still works.
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
	agency := f.token(t, "NTROM-1234567", "agency")
	cred := f.sealCred
	start := time.Now()
	code, _, body := f.send(t, "/api/v1/seal?level=B-T&credential="+cred, agency, "application/pdf", samplePDF(t, 4096), nil)
	if code != http.StatusGatewayTimeout || time.Since(start) > 8*time.Second || bytes.HasPrefix(body, []byte("%PDF")) {
		t.Fatalf("seal with a silent TSA: %d after %s: %.200s", code, time.Since(start), body)
	}
	code, _, body = f.send(t, "/api/v1/seal?level=B-B&credential="+cred, agency, "application/pdf", samplePDF(t, 4096), nil)
	if code != http.StatusOK {
		t.Fatalf("B-B with a silent TSA: %d %.200s", code, body)
	}
	if n := auditCount(t, dbPath, actionSeal, "failure", "NTROM-1234567"); n != 1 {
		t.Fatalf("%d failed seal records, want 1", n)
	}
	// Metrics per operation, level and outcome (since the restart).
	if code, _, body := f.srv.get(t, "/metrics", ""); code != 200 ||
		!strings.Contains(string(body), `thiqa_signing_operations_total{level="B-T",operation="seal",outcome="failure"} 1`) ||
		!strings.Contains(string(body), `thiqa_signing_operations_total{level="B-B",operation="seal",outcome="success"}`) {
		t.Fatalf("metrics: %d\n%s", code, body)
	}
	// A revoked seal certificate seals nothing more.
	if code, body := f.srv.post(t, "/api/v1/certificates/"+f.serials[cred]+"/revoke", f.officer, map[string]string{"reason": "keyCompromise"}); code != http.StatusOK {
		t.Fatalf("revoke: %d %s", code, body)
	}
	// It takes effect within a second (a "not revoked" answer is reused that long).
	for deadline := time.Now().Add(3 * time.Second); ; time.Sleep(200 * time.Millisecond) {
		code, _, body = f.send(t, "/api/v1/seal?level=B-B&credential="+cred, agency, "application/pdf", samplePDF(t, 4096), nil)
		if code != http.StatusOK || time.Now().After(deadline) {
			break
		}
	}
	wantStatus(t, "seal with a revoked certificate", code, body, http.StatusForbidden, "revoked")
	f.srv.stop(t)
	mustThiqa(t, nil, "audit", "verify", "--data", f.dir)
}

// TestSigningRSA: credentials with RSA-2048 keys on the token: a B-T seal
// (pdfsig, openssl cms, thiqa verify), signHash with PKCS#1 v1.5 and PSS.
func TestSigningRSA(t *testing.T) {
	f := newSignFixture(t, false, "rsa-2048")
	agency := f.token(t, "NTROM-1234567", "agency")
	cred, cert := f.credential(t, "organisation-seal", orgSubject())
	if _, ok := cert.PublicKey.(*rsa.PublicKey); !ok {
		t.Fatalf("seal key is %T, want RSA", cert.PublicKey)
	}
	code, _, body := f.send(t, "/api/v1/seal?level=B-T&credential="+cred, agency, "application/pdf", samplePDF(t, 20<<10), nil)
	if code != 200 {
		t.Fatalf("RSA seal: %d %.300s", code, body)
	}
	f.checkPDF(t, "rsa-sealed.pdf", body, "organisation", "B-T")

	citizen := f.token(t, "12345678", "citizen")
	ccred, ccert := f.credential(t, "citizen-signing", citizenSubject())
	if code, m := f.csc(t, "/api/v1/credentials/"+ccred+"/pin", citizen, PINRequest{PIN: "482916"}); code != 201 {
		t.Fatalf("set PIN: %d %v", code, m)
	}
	sum := sha256.Sum256([]byte("RSA contract"))
	h := base64.StdEncoding.EncodeToString(sum[:])
	for _, algo := range []string{"1.2.840.113549.1.1.11", "1.2.840.113549.1.1.10"} {
		_, m := f.csc(t, "/csc/v2/credentials/authorize", citizen, map[string]any{"credentialID": ccred, "numSignatures": 1,
			"hashes": []string{h}, "hashAlgorithmOID": "2.16.840.1.101.3.4.2.1", "PIN": "482916"})
		code, m := f.csc(t, "/csc/v2/signatures/signHash", citizen, map[string]any{"credentialID": ccred, "SAD": m["SAD"], "hashes": []string{h},
			"hashAlgorithmOID": "2.16.840.1.101.3.4.2.1", "signAlgo": algo})
		sigs, _ := m["signatures"].([]any)
		if code != 200 || len(sigs) != 1 {
			t.Fatalf("signHash %s: %d %v", algo, code, m)
		}
		sig, _ := base64.StdEncoding.DecodeString(sigs[0].(string))
		pub := ccert.PublicKey.(*rsa.PublicKey)
		var err error
		if algo == "1.2.840.113549.1.1.10" {
			err = rsa.VerifyPSS(pub, crypto.SHA256, sum[:], sig, &rsa.PSSOptions{SaltLength: rsa.PSSSaltLengthEqualsHash})
		} else {
			err = rsa.VerifyPKCS1v15(pub, crypto.SHA256, sum[:], sig)
		}
		if err != nil {
			t.Fatalf("signHash %s: signature does not verify: %v", algo, err)
		}
	}
	// An ECDSA signAlgo for an RSA key is refused.
	_, m := f.csc(t, "/csc/v2/credentials/authorize", citizen, map[string]any{"credentialID": ccred, "numSignatures": 1,
		"hashes": []string{h}, "hashAlgorithmOID": "2.16.840.1.101.3.4.2.1", "PIN": "482916"})
	if code, m := f.csc(t, "/csc/v2/signatures/signHash", citizen, map[string]any{"credentialID": ccred, "SAD": m["SAD"], "hashes": []string{h},
		"hashAlgorithmOID": "2.16.840.1.101.3.4.2.1", "signAlgo": "1.2.840.10045.4.3.2"}); code != 400 {
		t.Fatalf("ECDSA signAlgo on an RSA key: %d %v", code, m)
	}
	f.srv.stop(t)
	mustThiqa(t, nil, "audit", "verify", "--data", f.dir)
}

func TestSigningOnPostgres(t *testing.T) {
	f := newSignFixture(t, true)
	runSealing(t, f, []string{"B-T"})
	runCitizenSigning(t, f)
	f.srv.stop(t)
	mustThiqa(t, f.env, "audit", "verify", "--data", f.dir)
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

// sealRecordsHashes counts the successful seal records and those among
// them whose details do not name SHA-256 as the document digest's hash.
func sealRecordsHashes(t *testing.T, path string) (n, bad int) {
	t.Helper()
	db, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	rows, err := db.Query("SELECT details FROM audit_log WHERE action = 'document.seal' AND outcome = 'success'")
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	for rows.Next() {
		var d string
		if err := rows.Scan(&d); err != nil {
			t.Fatal(err)
		}
		n++
		if !strings.Contains(d, `"hash":"SHA-256"`) || !strings.Contains(d, `"documentDigest":"`) {
			bad++
		}
	}
	return n, bad
}

// runSealing: an agency seals at each level over HTTP, in a batch and with
// the CLI; refusals for another agency's credential and bad documents.
func runSealing(t *testing.T, f *signFixture, levels []string) {
	agency := f.token(t, "NTROM-1234567", "agency")
	other := f.token(t, "NTROM-7654321", "agency")
	cred, _ := f.credential(t, "organisation-seal", orgSubject())
	f.sealCred = cred
	otherSub := orgSubject()
	otherSub["organizationIdentifier"], otherSub["commonName"] = "NTROM-7654321", "Ministry of Labour Seal"
	otherCred, _ := f.credential(t, "organisation-seal", otherSub)
	pdf := samplePDF(t, 100<<10)

	for _, lv := range levels {
		code, hdr, body := f.send(t, "/api/v1/seal?level="+lv+"&credential="+cred, agency, "application/pdf", pdf, nil)
		if code != http.StatusOK || !bytes.HasPrefix(body, pdf[:len(pdf)-10]) || len(hdr.Get(DigestHeader)) != 64 {
			t.Fatalf("seal %s: %d %.300s", lv, code, body)
		}
		f.checkPDF(t, "sealed-"+lv+".pdf", body, "organisation", lv)
	}
	// Another agency's credential, a citizen, nobody: refused.
	code, _, body := f.send(t, "/api/v1/seal?level=B-B&credential="+otherCred, agency, "application/pdf", pdf, nil)
	wantStatus(t, "other agency's credential", code, body, http.StatusForbidden, "not yours")
	code, _, body = f.send(t, "/api/v1/seal?level=B-B&credential="+cred, other, "application/pdf", pdf, nil)
	wantStatus(t, "credential of the first agency", code, body, http.StatusForbidden, "not yours")
	code, _, body = f.send(t, "/api/v1/seal?level=B-B&credential="+cred, f.token(t, "12345678", "citizen"), "application/pdf", pdf, nil)
	wantStatus(t, "citizen sealing", code, body, http.StatusForbidden, "")
	code, _, _ = f.send(t, "/api/v1/seal?level=B-B&credential="+cred, "", "application/pdf", pdf, nil)
	if code != http.StatusUnauthorized {
		t.Fatalf("anonymous seal: %d", code)
	}
	// Bad documents.
	code, _, body = f.send(t, "/api/v1/seal?level=B-B&credential="+cred, agency, "application/pdf", []byte("hello, not a PDF"), nil)
	wantStatus(t, "not a PDF", code, body, http.StatusBadRequest, "not a PDF")
	in, enc := f.path("plain.pdf"), f.path("enc.pdf")
	_ = os.WriteFile(in, pdf, 0o600)
	if out, err := exec.Command(testenv.Tool(t, "qpdf"), "--encrypt", "user", "owner", "256", "--", in, enc).CombinedOutput(); err != nil {
		t.Fatalf("qpdf --encrypt: %v\n%s", err, out)
	}
	code, _, body = f.send(t, "/api/v1/seal?level=B-B&credential="+cred, agency, "application/pdf", []byte(mustRead(t, enc)), nil)
	wantStatus(t, "encrypted PDF", code, body, http.StatusBadRequest, "encrypt")
	code, _, body = f.send(t, "/api/v1/seal?level=B-B&credential="+cred, agency, "application/pdf", pdf[:len(pdf)/2], nil)
	wantStatus(t, "truncated PDF", code, body, http.StatusBadRequest, "")
	code, _, body = f.send(t, "/api/v1/seal?level=B-B&credential="+cred, agency, "application/pdf", certifiedNoChanges(t, pdf), nil)
	wantStatus(t, "certified PDF (DocMDP P=1)", code, body, http.StatusBadRequest, "forbids")
	code, _, body = f.send(t, "/api/v1/seal?level=B-B&credential="+cred, agency, "text/plain", pdf, nil)
	wantStatus(t, "wrong media type", code, body, http.StatusUnsupportedMediaType, "application/pdf")
	code, _, body = f.send(t, "/api/v1/seal?level=B-X&credential="+cred, agency, "application/pdf", pdf, nil)
	wantStatus(t, "bad level", code, body, http.StatusBadRequest, "level")

	// A batch: two PDFs and one that is not.
	var mb bytes.Buffer
	mw := multipart.NewWriter(&mb)
	for _, d := range []struct {
		name string
		data []byte
	}{{"a.pdf", pdf}, {"b.pdf", samplePDF(t, 2048)}, {"c.txt", []byte("not a pdf")}} {
		w, _ := mw.CreateFormFile("document", d.name)
		w.Write(d.data)
	}
	mw.Close()
	code, _, body = f.send(t, "/api/v1/seal/batch?level=B-T&credential="+cred, agency, mw.FormDataContentType(), mb.Bytes(), nil)
	var br BatchResponse
	if code != http.StatusOK || json.Unmarshal(body, &br) != nil || len(br.Results) != 3 {
		t.Fatalf("batch: %d %.300s", code, body)
	}
	for i, want := range []int{200, 200, 400} {
		if br.Results[i].Status != want {
			t.Fatalf("batch result %d: %+v", i, br.Results[i])
		}
	}
	sealed, _ := base64.StdEncoding.DecodeString(br.Results[1].Document)
	f.checkPDF(t, "batch-b.pdf", sealed, "organisation", "B-T")

	// The operator's CLI.
	mustThiqa(t, f.env, "seal", "--data", f.dir, "--credential", cred, "--level", "B-T", "--in", in, "--out", f.path("cli.pdf"))
	f.checkPDF(t, "cli.pdf", []byte(mustRead(t, f.path("cli.pdf"))), "organisation", "B-T")
	r := thiqa(t, f.env, "seal", "--data", f.dir, "--credential", cred, "--level", "B-B", "--in", enc, "--out", f.path("cli-enc.pdf"))
	if r.code == 0 || !strings.Contains(r.stderr, "encrypt") {
		t.Fatalf("CLI sealing an encrypted PDF: %d %s", r.code, r.stderr)
	}
	if _, err := os.Stat(f.path("cli-enc.pdf")); err == nil {
		t.Fatal("the CLI wrote an output for a refused document")
	}
}

// runCitizenSigning: enrolment, CSC authorize + signHash, document
// signing with the PIN, lockout, reuse and ownership refusals.
func runCitizenSigning(t *testing.T, f *signFixture) {
	citizen := f.token(t, "12345678", "citizen")
	other := f.token(t, "87654321", "citizen")
	cred, cert := f.credential(t, "citizen-signing", citizenSubject())

	if code, m := f.csc(t, "/csc/v2/info", "", map[string]any{}); code != 200 || m["specs"] != "2.0.0.0" {
		t.Fatalf("csc info: %d %v", code, m)
	}
	code, m := f.csc(t, "/csc/v2/credentials/list", citizen, map[string]any{})
	if code != 200 || fmt.Sprint(m["credentialIDs"]) != "["+cred+"]" {
		t.Fatalf("list: %d %v", code, m)
	}
	if code, m = f.csc(t, "/csc/v2/credentials/list", other, map[string]any{}); code != 200 || fmt.Sprint(m["credentialIDs"]) != "[]" {
		t.Fatalf("other's list: %d %v", code, m)
	}
	sum := sha256.Sum256([]byte("contract to sign"))
	h := base64.StdEncoding.EncodeToString(sum[:])
	authorize := func(token, pinValue string, hashes ...string) (int, map[string]any) {
		return f.csc(t, "/csc/v2/credentials/authorize", token, map[string]any{"credentialID": cred, "numSignatures": len(hashes),
			"hashes": hashes, "hashAlgorithmOID": "2.16.840.1.101.3.4.2.1", "PIN": pinValue})
	}
	code, m = authorize(citizen, "482916", h)
	wantCSC(t, "authorize before enrolment", code, m, 400, "invalid_request", "no signing PIN")
	if code, m = f.csc(t, "/api/v1/credentials/"+cred+"/pin", other, PINRequest{PIN: "111111"}); code != 403 {
		t.Fatalf("another citizen sets the PIN: %d %v", code, m)
	}
	if code, m = f.csc(t, "/api/v1/credentials/"+cred+"/pin", citizen, PINRequest{PIN: "482916"}); code != 201 {
		t.Fatalf("set PIN: %d %v", code, m)
	}
	if code, m = f.csc(t, "/api/v1/credentials/"+cred+"/pin", citizen, PINRequest{PIN: "000000"}); code != 409 {
		t.Fatalf("set PIN again: %d %v", code, m)
	}
	code, m = authorize(other, "482916", h)
	wantCSC(t, "another citizen's credential", code, m, 400, "invalid_request", "Invalid parameter credentialID")
	code, m = f.csc(t, "/csc/v2/credentials/authorize", citizen, map[string]any{"numSignatures": 1, "hashes": []string{h},
		"hashAlgorithmOID": "2.16.840.1.101.3.4.2.1", "authData": []map[string]string{{"id": "PIN", "value": "482916"}}})
	wantCSC(t, "authorize without credentialID", code, m, 400, "invalid_request", "Missing (or invalid type) string parameter credentialID")
	runCSCShape(t, f, citizen, other, cred, h)
	code, m = authorize(citizen, "482916", h)
	sad, _ := m["SAD"].(string)
	if code != 200 || sad == "" {
		t.Fatalf("authorize: %d %v", code, m)
	}
	signHash := func(token, sad string, hashes ...string) (int, map[string]any) {
		return f.csc(t, "/csc/v2/signatures/signHash", token, map[string]any{"credentialID": cred, "SAD": sad, "hashes": hashes,
			"hashAlgorithmOID": "2.16.840.1.101.3.4.2.1", "signAlgo": "1.2.840.10045.4.3.2"})
	}
	other2 := sha256.Sum256([]byte("another document"))
	code, m = signHash(citizen, sad, base64.StdEncoding.EncodeToString(other2[:]))
	wantCSC(t, "signHash of a hash the SAD did not authorise", code, m, 400, "invalid_request", "Hash is not authorized by the SAD")
	// That attempt consumed the SAD: authorise again.
	_, m = authorize(citizen, "482916", h)
	sad, _ = m["SAD"].(string)
	code, m = signHash(other, sad, h)
	wantCSC(t, "signHash by another citizen", code, m, 400, "invalid_request", "Invalid parameter credentialID")
	code, m = signHash(citizen, sad, h)
	sigs, _ := m["signatures"].([]any)
	if code != 200 || len(sigs) != 1 {
		t.Fatalf("signHash: %d %v", code, m)
	}
	sig, _ := base64.StdEncoding.DecodeString(sigs[0].(string))
	if !ecdsa.VerifyASN1(cert.PublicKey.(*ecdsa.PublicKey), sum[:], sig) {
		t.Fatal("the signHash signature does not verify with the certificate's key")
	}
	code, m = signHash(citizen, sad, h)
	wantCSC(t, "reused SAD", code, m, 400, "invalid_request", "Invalid parameter SAD")

	// A whole document, the PIN binding this one digest.
	pdf := samplePDF(t, 50<<10)
	code, _, body := f.send(t, "/api/v1/sign?level=B-T&credential="+cred, citizen, "application/pdf", pdf, map[string]string{PINHeader: "482916"})
	if code != 200 {
		t.Fatalf("sign: %d %.300s", code, body)
	}
	f.checkPDF(t, "signed.pdf", body, "citizen", "B-T")
	// The agency seals the signed document: both signatures stay valid.
	code, _, sealed := f.send(t, "/api/v1/seal?level=B-T&credential="+f.sealCred, f.token(t, "NTROM-1234567", "agency"), "application/pdf", body, nil)
	if code != 200 {
		t.Fatalf("sealing a signed document: %d %.300s", code, sealed)
	}
	both := f.path("signed-then-sealed.pdf")
	_ = os.WriteFile(both, sealed, 0o600)
	if out, _ := exec.Command(testenv.Tool(t, "pdfsig"), "-nssdir", "sql:"+f.nss, both).CombinedOutput(); strings.Count(string(out), "Signature is Valid.") != 2 ||
		strings.Count(string(out), "Certificate is Trusted.") != 2 {
		t.Fatalf("pdfsig after a second signature:\n%s", out)
	}
	code, _, body = f.send(t, "/api/v1/sign?level=B-B&credential="+cred, other, "application/pdf", pdf, map[string]string{PINHeader: "482916"})
	wantStatus(t, "sign with another citizen's credential", code, body, 403, "not yours")
	// The CLI, PIN from the environment.
	writeFile(t, f.path("citizen.jwt"), citizen)
	mustThiqa(t, []string{"SIGNING_PIN=482916"}, "sign", "--url", f.srv.base, "--token-file", f.path("citizen.jwt"), "--credential", cred,
		"--pin-env", "SIGNING_PIN", "--level", "B-B", "--in", f.path("plain.pdf"), "--out", f.path("cli-signed.pdf"))
	f.checkPDF(t, "cli-signed.pdf", []byte(mustRead(t, f.path("cli-signed.pdf"))), "citizen", "B-B")

	runTwoStepSigning(t, f, citizen, other, cred)

	// Wrong PIN five times: locked, even for the right PIN.
	code, _, body = f.send(t, "/api/v1/sign?level=B-B&credential="+cred, citizen, "application/pdf", pdf, map[string]string{PINHeader: "999999"})
	wantStatus(t, "sign with a wrong PIN", code, body, 403, "wrong PIN (4 tries left)")
	for i := 0; i < 3; i++ {
		code, m = authorize(citizen, "123123", h)
		wantCSC(t, fmt.Sprintf("wrong PIN %d", i+2), code, m, 400, "invalid_authentication_data", fmt.Sprintf("wrong PIN (%d tries left)", 3-i))
	}
	code, m = authorize(citizen, "123123", h)
	wantCSC(t, "fifth wrong PIN", code, m, 400, "invalid_request", "Credential locked")
	code, m = authorize(citizen, "482916", h)
	wantCSC(t, "right PIN after 5 wrong", code, m, 400, "invalid_request", "Credential locked")
	code, _, body = f.send(t, "/api/v1/sign?level=B-B&credential="+cred, citizen, "application/pdf", pdf, map[string]string{PINHeader: "482916"})
	wantStatus(t, "sign when locked", code, body, 423, "locked")
	if code, m = f.csc(t, "/csc/v2/credentials/info", citizen, map[string]any{"credentialID": cred}); code != 200 || !strings.Contains(fmt.Sprint(m["PIN"]), "locked:true") ||
		fmt.Sprint(m["key"].(map[string]any)["status"]) != "disabled" {
		t.Fatalf("info when locked: %d %v", code, m)
	}
	code, m = f.csc(t, "/csc/v2/credentials/list", citizen, map[string]any{"onlyValid": true})
	if code != 200 || fmt.Sprint(m["credentialIDs"]) != "[]" || m["onlyValid"] != true {
		t.Fatalf("onlyValid list when locked: %d %v", code, m)
	}
}

// runTwoStepSigning: prepare → CSC authorize over the returned hash →
// complete with the SAD. The SAD signs only the prepared document, with
// the prepared layout, once.
func runTwoStepSigning(t *testing.T, f *signFixture, citizen, other, cred string) {
	pdf := samplePDF(t, 30<<10)
	code, _, body := f.send(t, "/api/v1/sign/prepare?level=B-T&credential="+cred, citizen, "application/pdf", pdf, nil)
	var prep SignPrepareResponse
	if code != 200 || json.Unmarshal(body, &prep) != nil || prep.Hash == "" || prep.HashAlgorithmOID != "2.16.840.1.101.3.4.2.1" ||
		prep.Placeholder <= 0 || len(prep.DocumentDigest) != 64 || prep.Level != "B-T" {
		t.Fatalf("prepare: %d %.300s", code, body)
	}
	code, _, body = f.send(t, "/api/v1/sign/prepare?level=B-T&credential="+cred, other, "application/pdf", pdf, nil)
	wantStatus(t, "prepare with another citizen's credential", code, body, 403, "not yours")
	code, _, body = f.send(t, "/api/v1/sign/prepare?level=B-T&credential="+cred, citizen, "application/pdf", []byte("not a pdf"), nil)
	wantStatus(t, "prepare a non-PDF", code, body, 400, "not a PDF")
	authorize := func() string {
		code, m := f.csc(t, "/csc/v2/credentials/authorize", citizen, map[string]any{"credentialID": cred, "numSignatures": 1,
			"hashes": []string{prep.Hash}, "hashAlgorithmOID": prep.HashAlgorithmOID, "PIN": "482916"})
		sad, _ := m["SAD"].(string)
		if code != 200 || sad == "" {
			t.Fatalf("authorize the prepared hash: %d %v", code, m)
		}
		return sad
	}
	complete := func(token, sad string, doc []byte, at string, placeholder int) (int, http.Header, []byte) {
		hdr := map[string]string{}
		if sad != "" {
			hdr[SADHeader] = sad
		}
		return f.send(t, fmt.Sprintf("/api/v1/sign/complete?level=B-T&credential=%s&signingTime=%s&placeholder=%d", cred, at, placeholder),
			token, "application/pdf", doc, hdr)
	}
	// Another document under the SAD of the prepared one: refused, and the
	// attempt spent the SAD.
	tampered := bytes.Clone(pdf)
	i := bytes.LastIndex(tampered, []byte("sample padding"))
	copy(tampered[i:], "SAMPLE")
	sad := authorize()
	code, _, body = complete(citizen, sad, tampered, prep.SigningTime, prep.Placeholder)
	wantStatus(t, "complete another document", code, body, 403, "does not authorise")
	code, _, body = complete(citizen, sad, pdf, prep.SigningTime, prep.Placeholder)
	wantStatus(t, "complete with a spent SAD", code, body, 403, "already used")
	// Another signing time: another digest.
	at, _ := time.Parse(time.RFC3339, prep.SigningTime)
	code, _, body = complete(citizen, authorize(), pdf, at.Add(-time.Second).Format(time.RFC3339), prep.Placeholder)
	wantStatus(t, "complete with another signingTime", code, body, 403, "does not authorise")
	// Bad parameters: refused before the key is used.
	sad = authorize()
	code, _, body = complete(other, sad, pdf, prep.SigningTime, prep.Placeholder)
	wantStatus(t, "complete by another citizen", code, body, 403, "not yours")
	for _, bad := range []struct {
		sad, at     string
		placeholder int
		status      int
		text        string
	}{
		{"", prep.SigningTime, prep.Placeholder, 401, "SAD"},
		{sad, "yesterday", prep.Placeholder, 400, "signingTime"},
		{sad, at.Add(-time.Hour).Format(time.RFC3339), prep.Placeholder, 400, "prepare the document again"},
		{sad, prep.SigningTime, 10, 400, "placeholder"},
	} {
		code, _, body = complete(citizen, bad.sad, pdf, bad.at, bad.placeholder)
		wantStatus(t, "complete with bad parameters", code, body, bad.status, bad.text)
	}
	// The prepared document, its SAD: signed once, as prepared.
	code, hdr, body := complete(citizen, authorize(), pdf, prep.SigningTime, prep.Placeholder)
	if code != 200 || hdr.Get(DigestHeader) != prep.DocumentDigest {
		t.Fatalf("complete: %d digest %s, prepared %s: %.300s", code, hdr.Get(DigestHeader), prep.DocumentDigest, body)
	}
	f.checkPDF(t, "two-step.pdf", body, "citizen", "B-T")
}
