package main

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"database/sql"
	"encoding/json"
	"encoding/pem"
	"net/http"
	"net/url"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"

	"github.com/thiqa/thiqa/ca"
	"github.com/thiqa/thiqa/ca/revocation"
	"github.com/thiqa/thiqa/internal/testenv"
)

// newPKIFixture is newIDFixture (TLS, mutual TLS for the citizen and
// organisation CAs, the digital-ID service) on SQLite or PostgreSQL, with
// edit applied to thiqa.yaml before init. Subprocesses find the
// PostgreSQL DSN in THIQA_TEST_DSN, set for the whole test.
func newPKIFixture(t *testing.T, postgres bool, edit func(string) string) (*idFixture, *sql.DB) {
	t.Helper()
	f := &idFixture{dir: filepath.Join(t.TempDir(), "data")}
	port := idFreePort(t)
	f.base = "https://127.0.0.1:" + strconv.Itoa(port)
	dsn := ""
	if postgres {
		dsn = testenv.PostgresDSN(t)
		t.Setenv("THIQA_TEST_DSN", dsn)
	}
	conf := editedConfig(t, f.dir, func(y string) string {
		for old, repl := range map[string]string{
			"publicBaseURL: http://127.0.0.1:8080":     "publicBaseURL: http://127.0.0.1:" + strconv.Itoa(port),
			"object=oidc-token-signer\n  issuer: \"\"": "object=oidc-token-signer\n  issuer: " + f.base,
			"  mtls: {}": "  mtls:\n    clientCAFiles: [ca/citizen.pem, ca/organisation.pem]",
		} {
			if !strings.Contains(y, old) {
				t.Fatalf("thiqa.yaml lacks %q", old)
			}
			y = strings.Replace(y, old, repl, 1)
		}
		if postgres {
			y = strings.Replace(y, "driver: sqlite\n  dsn: thiqa.db\n  dsnEnv: \"\"", "driver: postgres\n  dsn: \"\"\n  dsnEnv: THIQA_TEST_DSN", 1)
		}
		if edit != nil {
			y = edit(y)
		}
		return y
	})
	mustThiqa(t, nil, "init", "--data", f.dir, "--config", conf)
	f.roots = writeServerTLS(t, f.dir)
	cfgPath := filepath.Join(f.dir, "thiqa.yaml")
	writeFile(t, cfgPath, mustRead(t, cfgPath)+"tls:\n  certFile: tls/cert.pem\n  keyFile: tls/key.pem\n")
	f.srv = startServerAt(t, f.dir, "127.0.0.1:"+strconv.Itoa(port), f.base)
	f.officer = lastLine(mustThiqa(t, nil, "token", "--data", f.dir, "--subject", "officer-1", "--role", "registration-officer").stdout)
	driver, source := "sqlite", filepath.Join(f.dir, "thiqa.db")
	if postgres {
		driver, source = "pgx", dsn
	}
	db, err := sql.Open(driver, source)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	f.db = source
	return f, db
}

// csrFor is a PEM CSR for key.
func csrFor(t *testing.T, key *ecdsa.PrivateKey) string {
	t.Helper()
	der, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{}, key)
	if err != nil {
		t.Fatal(err)
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: der}))
}

// ocspAnswer asks the server about the certificate in PEM file certPath
// with openssl ocsp and returns "good", "revoked (reason)" or "unknown".
func ocspAnswer(t *testing.T, f *idFixture, certPath string) string {
	t.Helper()
	args := []string{"ocsp", "-issuer", filepath.Join(f.dir, "ca", "citizen.pem"), "-url", f.base + "/ocsp",
		"-CAfile", filepath.Join(f.dir, "ca", "root.pem"), "-VAfile", filepath.Join(f.dir, "ca", "ocsp-citizen.pem"), "-nonce", "-cert", certPath}
	out, err := exec.Command(testenv.Tool(t, "openssl"), args...).CombinedOutput()
	if err != nil || !strings.Contains(string(out), "Response verify OK") {
		t.Fatalf("openssl %v: %v\n%s", args, err, out)
	}
	return ocspLine(string(out), certPath)
}

// ocspLine reads openssl ocsp's verdict on certPath from its output.
func ocspLine(out, certPath string) string {
	verdict, reason := "", ""
	for _, l := range strings.Split(out, "\n") {
		if v, ok := strings.CutPrefix(l, certPath+": "); ok {
			verdict = strings.TrimSpace(v)
		}
		if r, ok := strings.CutPrefix(strings.TrimSpace(l), "Reason: "); ok {
			reason = r
		}
	}
	if reason != "" {
		return verdict + " (" + reason + ")"
	}
	return verdict
}

// TestKeyCompromiseOnSQLite and TestKeyCompromiseOnPostgres: a key with a
// citizen-signing and a citizen-auth certificate; revoking the signing one
// for keyCompromise revokes the auth one too (openssl ocsp says so for
// both), the mutual-TLS login and API calls with the auth certificate are
// refused, and the key cannot be certified again. Before, the login with
// that CSR key was LoA substantial without hwk, and a mobile ID (key on the
// token) LoA high with hwk.
func TestKeyCompromiseOnSQLite(t *testing.T)   { runKeyCompromiseE2E(t, false) }
func TestKeyCompromiseOnPostgres(t *testing.T) { runKeyCompromiseE2E(t, true) }

func runKeyCompromiseE2E(t *testing.T, postgres bool) {
	f, db := newPKIFixture(t, postgres, nil)
	tmp := t.TempDir()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	sub := citizenSubject()
	sub["civilNumber"] = "23456789"
	signing := f.issue(t, ca.IssueRequest{Profile: "citizen-signing", Subject: sub, CSR: csrFor(t, key)})
	auth := f.issue(t, ca.IssueRequest{Profile: "citizen-auth", Subject: sub, CSR: csrFor(t, key)})
	writeFile(t, filepath.Join(tmp, "signing.pem"), signing.Certificate)
	writeFile(t, filepath.Join(tmp, "auth.pem"), auth.Certificate)
	blk, _ := pem.Decode([]byte(auth.Certificate))
	card := tls.Certificate{Certificate: [][]byte{blk.Bytes}, PrivateKey: key}

	// Before: the card logs in (LoA substantial, no hwk: the CA did not make
	// its key) and calls the API.
	rp := f.newPortal(t)
	login := func() url.Values {
		t.Helper()
		verifier := oauth2.GenerateVerifier()
		authURL := rp.conf.AuthCodeURL("st", oauth2.S256ChallengeOption(verifier), oidc.Nonce("n"))
		resp, err := f.client(&card).Get(authURL)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		loc, _ := url.Parse(resp.Header.Get("Location"))
		if resp.StatusCode != http.StatusSeeOther || !strings.HasPrefix(loc.String(), portalRedirect) {
			t.Fatalf("mTLS authorize: %d %s", resp.StatusCode, loc)
		}
		q := loc.Query()
		if code := q.Get("code"); code != "" {
			tok, err := rp.exchange(t, code, verifier)
			if err != nil {
				t.Fatalf("exchange: %v", err)
			}
			q.Set("id_token", tok.Extra("id_token").(string))
		}
		return q
	}
	claims := func(raw string) (acr string, amr []string) {
		t.Helper()
		idt, err := rp.provider.Verifier(&oidc.Config{ClientID: rp.id}).Verify(rp.ctx, raw)
		if err != nil {
			t.Fatal(err)
		}
		var cl struct {
			ACR string   `json:"acr"`
			AMR []string `json:"amr"`
		}
		if err := idt.Claims(&cl); err != nil {
			t.Fatal(err)
		}
		return cl.ACR, cl.AMR
	}
	if acr, amr := claims(login().Get("id_token")); acr != "http://eidas.europa.eu/LoA/substantial" || strings.Join(amr, ",") != "pop" {
		t.Fatalf("login with a CSR key: acr %s amr %v", acr, amr)
	}
	whoami := func() int {
		t.Helper()
		st, _, _ := f.do(t, f.client(&card), http.MethodGet, "/api/v1/whoami", "", "", "")
		return st
	}
	if st := whoami(); st != http.StatusOK {
		t.Fatalf("API call with the card: %d", st)
	}
	// A mobile ID's key is on the token: LoA high, hwk.
	mob := f.issue(t, ca.IssueRequest{Profile: "citizen-auth", Subject: citizenSubject(), KeyInHSM: true})
	pinFile := filepath.Join(tmp, "pin")
	writeFile(t, pinFile, "135790\n")
	mustThiqa(t, nil, "oidc", "mobile", "enrol", "--data", f.dir, "--credential", mob.CredentialID, "--pin-file", pinFile)
	verifier := oauth2.GenerateVerifier()
	q, ast := f.mobileLogin(t, rp.conf.AuthCodeURL("m", oauth2.S256ChallengeOption(verifier), oidc.Nonce("n")), "12345678", "135790")
	tok, err := rp.exchange(t, q.Get("code"), verifier)
	if ast != http.StatusOK || err != nil {
		t.Fatalf("mobile login: %d %v", ast, err)
	}
	if acr, amr := claims(tok.Extra("id_token").(string)); acr != "http://eidas.europa.eu/LoA/high" || strings.Join(amr, ",") != "pop,hwk,pin,mfa" {
		t.Fatalf("mobile login: acr %s amr %v", acr, amr)
	}

	// The signing certificate is reported compromised.
	b, _ := json.Marshal(revocation.RevokeRequest{Reason: "keyCompromise"})
	st, body, _ := f.do(t, f.client(nil), http.MethodPost, "/api/v1/certificates/"+signing.Serial+"/revoke", "application/json", string(b), f.officer)
	var rr revocation.RevokeResponse
	if st != http.StatusOK || json.Unmarshal([]byte(body), &rr) != nil || !rr.KeyBlocked || len(rr.AlsoRevoked) != 1 || rr.AlsoRevoked[0] != auth.Serial {
		t.Fatalf("revoke: %d %s", st, body)
	}
	for _, name := range []string{"signing.pem", "auth.pem"} {
		if got := ocspAnswer(t, f, filepath.Join(tmp, name)); got != "revoked (keyCompromise)" {
			t.Fatalf("OCSP for %s: %s", name, got)
		}
	}
	if q := login(); q.Get("error") != "access_denied" || q.Get("code") != "" {
		t.Fatalf("login with the compromised key: %v", q)
	}
	if st := whoami(); st != http.StatusUnauthorized {
		t.Fatalf("API call with the compromised key: %d", st)
	}
	// Re-certifying the key: refused, whatever the profile; nothing stored.
	var before int
	if err := db.QueryRow("SELECT count(*) FROM certificates").Scan(&before); err != nil {
		t.Fatal(err)
	}
	for _, profile := range []string{"citizen-auth", "citizen-signing"} {
		rb, _ := json.Marshal(ca.IssueRequest{Profile: profile, Subject: sub, CSR: csrFor(t, key)})
		st, body, _ := f.do(t, f.client(nil), http.MethodPost, "/api/v1/certificates", "application/json", string(rb), f.officer)
		if st != http.StatusBadRequest || !strings.Contains(body, "urn:thiqa:problem:key-compromised") || !strings.Contains(body, signing.Serial) {
			t.Fatalf("re-certifying the compromised key as %s: %d %s", profile, st, body)
		}
	}
	var after int
	if err := db.QueryRow("SELECT count(*) FROM certificates").Scan(&after); err != nil || after != before {
		t.Fatalf("certificates %d -> %d (%v)", before, after, err)
	}
	// The audit log names the original of the consequential revocation.
	var details string
	if err := db.QueryRow("SELECT details FROM audit_log WHERE action = 'certificate.revoke' AND object = '" + auth.Serial + "'").Scan(&details); err != nil ||
		!strings.Contains(details, `"consequenceOf":"`+signing.Serial+`"`) || !strings.Contains(details, `"originReason":"keyCompromise"`) {
		t.Fatalf("audit of the consequential revocation: %s %v", details, err)
	}
	var blocks int
	if err := db.QueryRow("SELECT count(*) FROM audit_log WHERE action = 'key.block'").Scan(&blocks); err != nil || blocks != 1 {
		t.Fatalf("key.block records: %d %v", blocks, err)
	}
	f.srv.stop(t)
	mustThiqa(t, nil, "audit", "verify", "--data", f.dir)
}
