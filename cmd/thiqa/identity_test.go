package main

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"io"
	"math/big"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
	"golang.org/x/oauth2"

	"github.com/thiqa/thiqa/ca"
	"github.com/thiqa/thiqa/identity"
	"github.com/thiqa/thiqa/internal/testenv"
	"github.com/thiqa/thiqa/policies"
)

// idFixture is a TLS-serving thiqa with the digital-ID service, citizens
// and portals.
type idFixture struct {
	dir, base string
	srv       *server
	officer   string
	roots     *x509.CertPool // trusts the server's TLS certificate
	db        string         // SQLite file (audit checks)
	tokens    map[string]string
}

// citizenToken returns a development API token of the citizen with the
// given civil number (what the citizen's phone app presents), minted once.
func (f *idFixture) citizenToken(t *testing.T, civil string) string {
	t.Helper()
	if tok, ok := f.tokens[civil]; ok {
		return tok
	}
	tok := lastLine(mustThiqa(t, nil, "token", "--data", f.dir, "--subject", civil, "--role", "citizen").stdout)
	if f.tokens == nil {
		f.tokens = map[string]string{}
	}
	f.tokens[civil] = tok
	return tok
}

// idFreePort returns a loopback port that was free a moment ago.
func idFreePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// writeServerTLS writes a self-signed server certificate for 127.0.0.1.
func writeServerTLS(t *testing.T, dir string) *x509.CertPool {
	t.Helper()
	k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(7), Subject: pkix.Name{CommonName: "127.0.0.1"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), IPAddresses: []net.IP{net.ParseIP("127.0.0.1")},
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}, KeyUsage: x509.KeyUsageDigitalSignature}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &k.PublicKey, k)
	if err != nil {
		t.Fatal(err)
	}
	kd, _ := x509.MarshalECPrivateKey(k)
	_ = os.MkdirAll(filepath.Join(dir, "tls"), 0o700)
	writeFile(t, filepath.Join(dir, "tls", "cert.pem"), string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})))
	writeFile(t, filepath.Join(dir, "tls", "key.pem"), string(pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kd})))
	c, _ := x509.ParseCertificate(der)
	pool := x509.NewCertPool()
	pool.AddCert(c)
	return pool
}

func newIDFixture(t *testing.T, edits ...func(y string) string) *idFixture {
	t.Helper()
	f := &idFixture{dir: filepath.Join(t.TempDir(), "data")}
	initData(t, f.dir)
	port := idFreePort(t)
	f.base = "https://127.0.0.1:" + strconv.Itoa(port)
	f.roots = writeServerTLS(t, f.dir)
	conf := filepath.Join(f.dir, "thiqa.yaml")
	y := mustRead(t, conf)
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
	for _, edit := range edits {
		y = edit(y)
	}
	writeFile(t, conf, y+"tls:\n  certFile: tls/cert.pem\n  keyFile: tls/key.pem\n")
	f.srv = startServerAt(t, f.dir, "127.0.0.1:"+strconv.Itoa(port), f.base)
	f.officer = lastLine(mustThiqa(t, nil, "token", "--data", f.dir, "--subject", "officer-1", "--role", "registration-officer").stdout)
	f.db = filepath.Join(f.dir, "thiqa.db")
	return f
}

// startServerAt runs `thiqa serve` on addr (TLS per configuration).
func startServerAt(t *testing.T, dir, addr, base string) *server {
	t.Helper()
	return startServerAtEnv(t, dir, addr, base, nil)
}

// startServerAtEnv is startServerAt with extra environment variables.
func startServerAtEnv(t *testing.T, dir, addr, base string, env []string) *server {
	t.Helper()
	ready := filepath.Join(t.TempDir(), "ready")
	cmd := exec.Command(thiqaBin, "serve", "--data", dir, "--addr", addr, "--ready-file", ready)
	cmd.Env = append(os.Environ(), env...)
	var errb testenv.SyncBuffer
	cmd.Stderr = &errb
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	s := &server{cmd: cmd, stderr: &errb, base: base}
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
		}
		noDataRace(t, errb.String())
	})
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if _, err := os.Stat(ready); err == nil {
			return s
		}
		if cmd.ProcessState != nil {
			break
		}
	}
	t.Fatalf("thiqa serve did not become ready:\n%s", errb.String())
	return nil
}

// client returns an HTTPS client trusting the server, presenting cert if
// given, never following redirects.
func (f *idFixture) client(cert *tls.Certificate) *http.Client {
	tc := &tls.Config{RootCAs: f.roots}
	if cert != nil {
		tc.Certificates = []tls.Certificate{*cert}
	}
	return &http.Client{Timeout: time.Minute, Transport: &http.Transport{TLSClientConfig: tc},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
}

func (f *idFixture) do(t *testing.T, c *http.Client, method, path, ctype, body, bearer string) (int, string, http.Header) {
	t.Helper()
	req, err := http.NewRequest(method, f.base+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if ctype != "" {
		req.Header.Set("Content-Type", ctype)
	}
	if bearer != "" {
		req.Header.Set("Authorization", "Bearer "+bearer)
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), resp.Header
}

// issue issues a certificate through the CA API.
func (f *idFixture) issue(t *testing.T, req ca.IssueRequest) ca.IssueResponse {
	t.Helper()
	b, _ := json.Marshal(req)
	st, body, _ := f.do(t, f.client(nil), http.MethodPost, "/api/v1/certificates", "application/json", string(b), f.officer)
	var out ca.IssueResponse
	if st != http.StatusCreated || json.Unmarshal([]byte(body), &out) != nil {
		t.Fatalf("issuing %s: %d %s", req.Profile, st, body)
	}
	return out
}

// citizenKeyCert issues a citizen-auth certificate for a key held by the
// test (an ID card) and returns it as a TLS client certificate.
func (f *idFixture) citizenKeyCert(t *testing.T, civil string) (tls.Certificate, string) {
	t.Helper()
	k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	der, _ := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{}, k)
	sub := citizenSubject()
	sub["civilNumber"] = civil
	out := f.issue(t, ca.IssueRequest{Profile: "citizen-auth", Subject: sub, CSR: string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: der}))})
	blk, _ := pem.Decode([]byte(out.Certificate))
	return tls.Certificate{Certificate: [][]byte{blk.Bytes}, PrivateKey: k}, out.Serial
}

func (f *idFixture) revoke(t *testing.T, serial string) {
	t.Helper()
	st, body, _ := f.do(t, f.client(nil), http.MethodPost, "/api/v1/certificates/"+serial+"/revoke", "application/json", `{"reason":"keyCompromise"}`, f.officer)
	if st != http.StatusOK {
		t.Fatalf("revoke: %d %s", st, body)
	}
}

// portal is a relying party using go-oidc and x/oauth2.
type portal struct {
	id       string
	key      *ecdsa.PrivateKey
	conf     oauth2.Config
	provider *oidc.Provider
	ctx      context.Context
	tokenURL string
}

const portalRedirect = "https://portal.example.om/callback"

func (f *idFixture) newPortal(t *testing.T, extra ...string) *portal {
	t.Helper()
	k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	set, _ := json.Marshal(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: &k.PublicKey, KeyID: "p1", Algorithm: "ES256", Use: "sig"}}})
	jf := filepath.Join(t.TempDir(), "jwks.json")
	writeFile(t, jf, string(set))
	args := append([]string{"oidc", "client", "add", "--data", f.dir, "--name", "Ministry portal", "--redirect-uri", portalRedirect, "--jwks-file", jf}, extra...)
	id := lastLine(mustThiqa(t, nil, args...).stdout)
	ctx := oidc.ClientContext(context.Background(), f.client(nil))
	prov, err := oidc.NewProvider(ctx, f.base) // discovery; issuer must match
	if err != nil {
		t.Fatalf("discovery: %v", err)
	}
	ep := prov.Endpoint()
	ep.AuthStyle = oauth2.AuthStyleInParams
	return &portal{id: id, key: k, provider: prov, ctx: ctx, tokenURL: ep.TokenURL,
		conf: oauth2.Config{ClientID: id, Endpoint: ep, RedirectURL: portalRedirect, Scopes: []string{oidc.ScopeOpenID, "profile"}}}
}

func (p *portal) assertion(t *testing.T) string {
	t.Helper()
	s, _ := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: jose.JSONWebKey{Key: p.key, KeyID: "p1"}}, nil)
	now := time.Now()
	a, err := jwt.Signed(s).Claims(jwt.Claims{Issuer: p.id, Subject: p.id, Audience: jwt.Audience{p.tokenURL},
		IssuedAt: jwt.NewNumericDate(now), Expiry: jwt.NewNumericDate(now.Add(time.Minute)), ID: strconv.FormatInt(now.UnixNano(), 36)}).Serialize()
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// exchange redeems code with private_key_jwt and PKCE through x/oauth2.
func (p *portal) exchange(t *testing.T, code, verifier string) (*oauth2.Token, error) {
	t.Helper()
	return p.conf.Exchange(p.ctx, code, oauth2.VerifierOption(verifier),
		oauth2.SetAuthURLParam("client_assertion_type", "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"),
		oauth2.SetAuthURLParam("client_assertion", p.assertion(t)))
}

var (
	reLoginSession = regexp.MustCompile(`name="login" value="([^"]+)"`)
	reLoginKey     = regexp.MustCompile(`name="key" value="([^"]+)"`)
)

// mobileLogin drives the browser and phone sides of a remote login for
// the portal's authorization URL; it returns the redirect query.
func (f *idFixture) mobileLogin(t *testing.T, authURL, civil, pin string) (url.Values, int) {
	t.Helper()
	q, st, _ := f.mobileLoginBody(t, authURL, civil, pin)
	return q, st
}

// mobileLoginBody is mobileLogin that also returns the approval's answer.
func (f *idFixture) mobileLoginBody(t *testing.T, authURL, civil, pin string) (url.Values, int, string) {
	t.Helper()
	u, _ := url.Parse(authURL)
	q := u.Query()
	q.Set("civil_number", civil)
	br := f.client(nil)
	st, body, _ := f.do(t, br, http.MethodPost, identity.PathAuthorize, "application/x-www-form-urlencoded", q.Encode(), "")
	s, k := reLoginSession.FindStringSubmatch(body), reLoginKey.FindStringSubmatch(body)
	if st != 200 || s == nil || k == nil {
		t.Fatalf("authorize: %d %s", st, body)
	}
	// The citizen's phone, signed in as the citizen, lists the pending
	// login and shows the same code.
	phone := f.citizenToken(t, civil)
	st, body, _ = f.do(t, br, http.MethodGet, identity.PathMobileList, "", "", phone)
	var pend []identity.PendingSession
	if st != 200 || json.Unmarshal([]byte(body), &pend) != nil || len(pend) == 0 {
		t.Fatalf("pending: %d %s", st, body)
	}
	var code string
	for _, p := range pend {
		if p.Session == s[1] {
			code = p.VerificationCode
		}
	}
	ab, _ := json.Marshal(identity.ApproveRequest{Session: s[1], VerificationCode: code, PIN: pin})
	approveStatus, approveBody, _ := f.do(t, br, http.MethodPost, identity.PathMobileApprove, "application/json", string(ab), phone)
	st, _, h := f.do(t, br, http.MethodPost, identity.PathComplete, "application/x-www-form-urlencoded", url.Values{"login": {s[1]}, "key": {k[1]}}.Encode(), "")
	if st != http.StatusSeeOther || !strings.HasPrefix(h.Get("Location"), portalRedirect) {
		t.Fatalf("complete: %d %s", st, h.Get("Location"))
	}
	loc, _ := url.Parse(h.Get("Location"))
	return loc.Query(), approveStatus, approveBody
}

func TestDigitalIDOnSQLite(t *testing.T) {
	f := newIDFixture(t)

	// A mobile ID: citizen-auth key on the token, enrolled with a PIN.
	sub := citizenSubject()
	mob := f.issue(t, ca.IssueRequest{Profile: "citizen-auth", Subject: sub, KeyInHSM: true})
	if mob.CredentialID == "" {
		t.Fatal("no credential ID for a keyInHSM certificate")
	}
	pinFile := filepath.Join(t.TempDir(), "pin")
	writeFile(t, pinFile, "135790\n")
	if out := mustThiqa(t, nil, "oidc", "mobile", "enrol", "--data", f.dir, "--credential", mob.CredentialID, "--pin-file", pinFile); !strings.Contains(out.stdout, "12345678") {
		t.Fatalf("enrol: %s", out.stdout)
	}
	// A bad registration is refused with exit 2 (identity.RegistrationError).
	if r := thiqa(t, nil, "oidc", "client", "add", "--data", f.dir, "--name", "x", "--redirect-uri", "http://evil.example/cb", "--tls-subject", "CN=x"); r.code != 2 {
		t.Fatalf("plain-http redirect URI: exit %d, want 2", r.code)
	}

	rp := f.newPortal(t)
	t.Run("mobile login through go-oidc", func(t *testing.T) {
		verifier := oauth2.GenerateVerifier()
		authURL := rp.conf.AuthCodeURL("state-1", oauth2.S256ChallengeOption(verifier), oidc.Nonce("nonce-1"))
		q, ast := f.mobileLogin(t, authURL, "12345678", "135790")
		if ast != 200 || q.Get("code") == "" || q.Get("state") != "state-1" {
			t.Fatalf("login: approve %d, redirect %v", ast, q)
		}
		tok, err := rp.exchange(t, q.Get("code"), verifier)
		if err != nil {
			t.Fatalf("exchange: %v", err)
		}
		raw, _ := tok.Extra("id_token").(string)
		idt, err := rp.provider.Verifier(&oidc.Config{ClientID: rp.id}).Verify(rp.ctx, raw)
		if err != nil {
			t.Fatalf("ID token verification (go-oidc, JWKS): %v", err)
		}
		var cl struct {
			ACR        string   `json:"acr"`
			AMR        []string `json:"amr"`
			AuthTime   int64    `json:"auth_time"`
			GivenName  string   `json:"given_name"`
			FamilyName string   `json:"family_name"`
			Name       string   `json:"name"`
		}
		if err := idt.Claims(&cl); err != nil {
			t.Fatal(err)
		}
		if idt.Nonce != "nonce-1" || cl.GivenName != "Aisha" || cl.FamilyName != "Al Harthy" || cl.AuthTime == 0 || len(cl.AMR) == 0 || cl.ACR == "" {
			t.Fatalf("claims: nonce %q %+v", idt.Nonce, cl)
		}
		if idt.Subject == "12345678" || idt.Subject == "" {
			t.Fatalf("sub %q is not pairwise", idt.Subject)
		}
		ui, err := rp.provider.UserInfo(rp.ctx, oauth2.StaticTokenSource(tok))
		if err != nil || ui.Subject != idt.Subject {
			t.Fatalf("userinfo: %+v %v", ui, err)
		}
		// The same code again: refused, and the access token is revoked.
		if _, err := rp.exchange(t, q.Get("code"), verifier); err == nil || !strings.Contains(err.Error(), "invalid_grant") {
			t.Fatalf("reused code: %v", err)
		}
		if _, err := rp.provider.UserInfo(rp.ctx, oauth2.StaticTokenSource(tok)); err == nil {
			t.Fatal("userinfo still answers after the code was reused")
		}
	})

	t.Run("ID card over mutual TLS", func(t *testing.T) {
		card, serial := f.citizenKeyCert(t, "23456789")
		verifier := oauth2.GenerateVerifier()
		authURL := rp.conf.AuthCodeURL("state-2", oauth2.S256ChallengeOption(verifier), oidc.Nonce("nonce-2"))
		get := func() url.Values {
			resp, err := f.client(&card).Get(authURL)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			loc, _ := url.Parse(resp.Header.Get("Location"))
			if resp.StatusCode != http.StatusSeeOther || !strings.HasPrefix(loc.String(), portalRedirect) {
				t.Fatalf("mTLS authorize: %d %s", resp.StatusCode, loc)
			}
			return loc.Query()
		}
		q := get()
		tok, err := rp.exchange(t, q.Get("code"), verifier)
		if err != nil {
			t.Fatalf("exchange: %v", err)
		}
		if _, err := rp.provider.Verifier(&oidc.Config{ClientID: rp.id}).Verify(rp.ctx, tok.Extra("id_token").(string)); err != nil {
			t.Fatal(err)
		}
		// Revoked at the CA: the next login is refused at once.
		f.revoke(t, serial)
		if q := get(); q.Get("error") != "access_denied" || q.Get("code") != "" {
			t.Fatalf("revoked card: %v", q)
		}
	})

	t.Run("phone side needs the citizen's own credentials", func(t *testing.T) {
		authURL := rp.conf.AuthCodeURL("s", oauth2.S256ChallengeOption(oauth2.GenerateVerifier()))
		u, _ := url.Parse(authURL)
		q := u.Query()
		q.Set("civil_number", "12345678")
		br := f.client(nil)
		st, body, _ := f.do(t, br, http.MethodPost, identity.PathAuthorize, "application/x-www-form-urlencoded", q.Encode(), "")
		s := reLoginSession.FindStringSubmatch(body)
		if st != 200 || s == nil {
			t.Fatalf("authorize: %d %s", st, body)
		}
		own, other := f.citizenToken(t, "12345678"), f.citizenToken(t, "87654321")
		agency := lastLine(mustThiqa(t, nil, "token", "--data", f.dir, "--subject", "NTROM-1234567", "--role", "agency").stdout)
		var code string
		st, body, _ = f.do(t, br, http.MethodGet, identity.PathMobileList+"?civil_number=12345678", "", "", own)
		var pend []identity.PendingSession
		if st != 200 || json.Unmarshal([]byte(body), &pend) != nil {
			t.Fatalf("own list: %d %s", st, body)
		}
		for _, p := range pend {
			if p.Session == s[1] {
				code = p.VerificationCode
			}
		}
		if code == "" {
			t.Fatalf("own list lacks the session: %s", body)
		}
		for _, c := range []struct {
			name, path, bearer string
			want               int
		}{
			{"no credentials", identity.PathMobileList + "?civil_number=12345678", "", http.StatusUnauthorized},
			{"agency", identity.PathMobileList, agency, http.StatusForbidden},
			{"another citizen naming this one", identity.PathMobileList + "?civil_number=12345678", other, http.StatusForbidden},
		} {
			if st, body, h := f.do(t, br, http.MethodGet, c.path, "", "", c.bearer); st != c.want || strings.Contains(body, code) ||
				(c.want == http.StatusUnauthorized && !strings.HasPrefix(h.Get("WWW-Authenticate"), "Bearer")) {
				t.Fatalf("list, %s: %d %s", c.name, st, body)
			}
		}
		if st, body, _ := f.do(t, br, http.MethodGet, identity.PathMobileList, "", "", other); st != 200 || strings.TrimSpace(body) != "[]" {
			t.Fatalf("another citizen's own list: %d %s", st, body)
		}
		ab, _ := json.Marshal(identity.ApproveRequest{Session: s[1], VerificationCode: code, PIN: "135790"})
		for _, c := range []struct {
			name, bearer string
			want         int
		}{{"no credentials", "", http.StatusUnauthorized}, {"agency", agency, http.StatusForbidden}, {"another citizen", other, http.StatusForbidden}} {
			if st, body, _ := f.do(t, br, http.MethodPost, identity.PathMobileApprove, "application/json", string(ab), c.bearer); st != c.want {
				t.Fatalf("approve, %s: %d %s", c.name, st, body)
			}
		}
		// The login is still pending: nobody else could approve or cancel it.
		if st, body, _ := f.do(t, br, http.MethodGet, identity.PathMobileList, "", "", own); st != 200 || !strings.Contains(body, s[1]) {
			t.Fatalf("own list after the refusals: %d %s", st, body)
		}
		// Authentication and role refusals: one record each, naming the
		// caller (the agency) or, for the anonymous caller, its address.
		if n := auditCount(t, f.db, string(policies.ActionApproveLogin), "refused", "anonymous"); n != 2 {
			t.Fatalf("refused anonymous phone-side requests audited: %d, want 2", n)
		}
		if n := auditCount(t, f.db, string(policies.ActionApproveLogin), "refused", "NTROM-1234567"); n != 2 {
			t.Fatalf("refused agency phone-side requests audited: %d, want 2", n)
		}
		if n := auditCount(t, f.db, string(policies.ActionApproveLogin), "refused", "citizen:87654321"); n != 2 {
			t.Fatalf("refused phone-side requests of another citizen audited: %d", n)
		}
	})

	t.Run("refusals", func(t *testing.T) {
		verifier := oauth2.GenerateVerifier()
		authURL := rp.conf.AuthCodeURL("s", oauth2.S256ChallengeOption(verifier))
		// Wrong PIN.
		q, ast := f.mobileLogin(t, authURL, "12345678", "000000")
		if ast != http.StatusForbidden || q.Get("error") != "access_denied" {
			t.Fatalf("wrong PIN: %d %v", ast, q)
		}
		// Wrong PKCE verifier.
		q, _ = f.mobileLogin(t, authURL, "12345678", "135790")
		if _, err := rp.exchange(t, q.Get("code"), oauth2.GenerateVerifier()); err == nil || !strings.Contains(err.Error(), "invalid_grant") {
			t.Fatalf("wrong verifier: %v", err)
		}
		// Unregistered redirect URI: an error page, no redirect.
		bad := strings.Replace(authURL, url.QueryEscape(portalRedirect), url.QueryEscape("https://evil.example/cb"), 1)
		resp, err := f.client(nil).Get(bad)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusBadRequest || resp.Header.Get("Location") != "" {
			t.Fatalf("unregistered redirect: %d %q", resp.StatusCode, resp.Header.Get("Location"))
		}
		// Revoked mobile ID certificate.
		f.revoke(t, mob.Serial)
		q, ast = f.mobileLogin(t, authURL, "12345678", "135790")
		if ast != http.StatusForbidden || q.Get("error") != "access_denied" {
			t.Fatalf("revoked mobile ID: %d %v", ast, q)
		}
		// Replayed client assertion: the second use is refused.
		asr := rp.assertion(t)
		form := url.Values{"grant_type": {"authorization_code"}, "code": {"unknown"}, "redirect_uri": {portalRedirect}, "code_verifier": {verifier},
			"client_assertion_type": {"urn:ietf:params:oauth:client-assertion-type:jwt-bearer"}, "client_assertion": {asr}}
		if st, body, _ := f.do(t, f.client(nil), http.MethodPost, identity.PathToken, "application/x-www-form-urlencoded", form.Encode(), ""); st != 400 || !strings.Contains(body, "invalid_grant") {
			t.Fatalf("first use of the assertion: %d %s", st, body)
		}
		if st, body, _ := f.do(t, f.client(nil), http.MethodPost, identity.PathToken, "application/x-www-form-urlencoded", form.Encode(), ""); st != 401 || !strings.Contains(body, "invalid_client") {
			t.Fatalf("replayed assertion: %d %s", st, body)
		}
		// Tampered assertion (payload changed after signing).
		parts := strings.Split(rp.assertion(t), ".")
		parts[1] = strings.TrimRight(base64.RawURLEncoding.EncodeToString([]byte(`{"iss":"`+rp.id+`","sub":"`+rp.id+`","aud":"`+rp.tokenURL+`","exp":9999999999,"jti":"x"}`)), "=")
		form.Set("client_assertion", strings.Join(parts, "."))
		if st, body, _ := f.do(t, f.client(nil), http.MethodPost, identity.PathToken, "application/x-www-form-urlencoded", form.Encode(), ""); st != 401 || !strings.Contains(body, "invalid_client") {
			t.Fatalf("tampered assertion: %d %s", st, body)
		}
		// Five wrong PINs lock the mobile ID; the right PIN is refused after.
		for range 5 {
			f.mobileLogin(t, authURL, "12345678", "000000")
		}
		_, ast, body := f.mobileLoginBody(t, authURL, "12345678", "135790")
		if ast != http.StatusLocked || !strings.Contains(body, "locked") {
			t.Fatalf("locked PIN: %d %s", ast, body)
		}
	})

	if n := auditCount(t, f.db, "oidc.login", "success", "citizen:"); n != 3 {
		t.Fatalf("successful logins audited: %d", n)
	}
	if n := auditCount(t, f.db, "oidc.login", "refused", ""); n != 9 {
		t.Fatalf("refused logins audited: %d", n)
	}
	if n := auditCount(t, f.db, "oidc.token", "refused", ""); n != 5 {
		t.Fatalf("refused token requests audited: %d", n)
	}
	if n := auditCount(t, f.db, "oidc.authorize", "refused", ""); n != 1 {
		t.Fatalf("refused authorization requests audited: %d", n)
	}
	st, metrics, _ := f.do(t, f.client(nil), http.MethodGet, "/metrics", "", "", "")
	if st != 200 || !strings.Contains(metrics, `thiqa_oidc_logins_total{method="mobile",outcome="success"} 2`) ||
		!strings.Contains(metrics, `thiqa_oidc_logins_total{method="mtls",outcome="refused"} 1`) {
		t.Fatalf("metrics: %d\n%s", st, grepLines(metrics, "thiqa_oidc_logins"))
	}
	f.srv.stop(t)
	mustThiqa(t, nil, "audit", "verify", "--data", f.dir)
}

func grepLines(s, sub string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, sub) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}
