package main

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/url"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
	"golang.org/x/oauth2"

	"github.com/thiqa/thiqa/ca"
	"github.com/thiqa/thiqa/identity"
	"github.com/thiqa/thiqa/signing"
)

// The digital ID opens the signing service (CSC API v2 OAuth2, section
// 8.4), driven end to end: golang.org/x/oauth2 is the signing
// application, registered with `thiqa oidc client add` and authenticating
// with private_key_jwt; the citizen's side is scripted (the browser's forms,
// the phone's approval with the citizen's own token, or the ID card over
// mutual TLS); the keys are on SoftHSM; SQLite and PostgreSQL.

func TestCSCOAuth2OnSQLite(t *testing.T)   { runCSCOAuth2(t, false) }
func TestCSCOAuth2OnPostgres(t *testing.T) { runCSCOAuth2(t, true) }

const (
	cscAppRedirect = "https://signing-app.example.om/cb"
	cscLoginPIN    = "135790"
	// cscCodeLife is the test server's identity.codeLifetime: the codes
	// are redeemed within tens of milliseconds, and the expired-code check
	// waits for one to pass it.
	cscCodeLife = 2 * time.Second
)

// signingApp is the signing application: an x/oauth2 client.
type signingApp struct {
	id      string
	key     *ecdsa.PrivateKey
	conf    oauth2.Config
	ctx     context.Context // carries the HTTP client trusting the server
	issuer  string
	tokenEP string
}

// assertion is a private_key_jwt client assertion for aud.
func (a *signingApp) assertion(t *testing.T, aud string) string {
	t.Helper()
	s, _ := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: jose.JSONWebKey{Key: a.key, KeyID: "app-1"}}, nil)
	now := time.Now()
	tok, err := jwt.Signed(s).Claims(jwt.Claims{Issuer: a.id, Subject: a.id, Audience: jwt.Audience{aud},
		IssuedAt: jwt.NewNumericDate(now), Expiry: jwt.NewNumericDate(now.Add(time.Minute)), ID: base64.RawURLEncoding.EncodeToString(randomBytes(12))}).Serialize()
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// authURL is the authorization request of scope (with the credential
// parameters, for scope credential) and the PKCE verifier.
func (a *signingApp) authURL(scope, state string, extra ...oauth2.AuthCodeOption) (string, string) {
	verifier := oauth2.GenerateVerifier()
	c := a.conf
	c.Scopes = []string{scope}
	return c.AuthCodeURL(state, append(extra, oauth2.S256ChallengeOption(verifier))...), verifier
}

// credentialParams names credential and hashes in an authorization request.
func credentialParams(cred string, hashes ...[]byte) []oauth2.AuthCodeOption {
	var hs []string
	for _, h := range hashes {
		hs = append(hs, base64.RawURLEncoding.EncodeToString(h))
	}
	return []oauth2.AuthCodeOption{oauth2.SetAuthURLParam("credentialID", cred), oauth2.SetAuthURLParam("numSignatures", strconv.Itoa(len(hashes))),
		oauth2.SetAuthURLParam("hashes", strings.Join(hs, ",")), oauth2.SetAuthURLParam("hashAlgorithmOID", "2.16.840.1.101.3.4.2.1"),
		oauth2.SetAuthURLParam("description", "Lease contract")}
}

// exchange redeems code with PKCE and an assertion for aud.
func (a *signingApp) exchange(t *testing.T, code, verifier, aud string) (*oauth2.Token, error) {
	t.Helper()
	return a.conf.Exchange(a.ctx, code, oauth2.VerifierOption(verifier),
		oauth2.SetAuthURLParam("client_assertion_type", "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"),
		oauth2.SetAuthURLParam("client_assertion", a.assertion(t, aud)))
}

var reHiddenField = regexp.MustCompile(`<input type="hidden" name="([^"]+)" value="([^"]*)">`)

// citizenBrowser is the citizen's browser (with an ID card when cert is
// set): it trusts the server and stops at every redirect.
func (f *azFixture) citizenBrowser(cert *tls.Certificate) *http.Client {
	tc := &tls.Config{RootCAs: f.roots}
	if cert != nil {
		tc.Certificates = []tls.Certificate{*cert}
	}
	return &http.Client{Timeout: time.Minute, Transport: &http.Transport{TLSClientConfig: tc},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
}

// browse sends one request of the browser and returns the status, the page
// and the redirect (nil when there is none).
func browse(t *testing.T, hc *http.Client, method, u string, form url.Values) (int, string, *url.URL) {
	t.Helper()
	var resp *http.Response
	var err error
	if method == http.MethodPost {
		resp, err = hc.PostForm(u, form)
	} else {
		resp, err = hc.Get(u)
	}
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var loc *url.URL
	if resp.StatusCode == http.StatusSeeOther {
		loc, _ = url.Parse(resp.Header.Get("Location"))
	}
	return resp.StatusCode, string(b), loc
}

// hiddenForm reads the hidden fields of a page's form.
func hiddenForm(page string) url.Values {
	v := url.Values{}
	for _, m := range reHiddenField.FindAllStringSubmatch(page, -1) {
		v.Set(m[1], strings.ReplaceAll(strings.ReplaceAll(m[2], "&#43;", "+"), "&amp;", "&"))
	}
	return v
}

// cscMobile drives a mobile-ID authorization: the browser enters the civil
// number, the phone (the citizen's own token) approves with the login PIN,
// the browser completes and, when asked, sends the signing PINs in turn.
// It returns the last answer: status, page, redirect.
func (f *azFixture) cscMobile(t *testing.T, authURL, civil string, signingPINs ...string) (int, string, *url.URL) {
	t.Helper()
	u, _ := url.Parse(authURL)
	q := u.Query()
	q.Set("civil_number", civil)
	br := f.citizenBrowser(nil)
	st, page, _ := browse(t, br, http.MethodPost, f.base+identity.PathCSCAuthorize, q)
	login := hiddenForm(page)
	if st != 200 || login.Get("login") == "" || login.Get("key") == "" {
		t.Fatalf("CSC authorize with the civil number: %d %.500s", st, page)
	}
	phone := azCaller{name: "phone", bearer: f.token(t, civil, "citizen"), subject: civil}
	st, body := f.do(t, phone, http.MethodGet, identity.PathMobileList, "", nil, nil)
	var pend []identity.PendingSession
	if st != 200 || json.Unmarshal(body, &pend) != nil {
		t.Fatalf("pending: %d %s", st, body)
	}
	var code string
	for _, p := range pend {
		if p.Session == login.Get("login") {
			code = p.VerificationCode
			if p.Scope == "" || p.ClientName == "" {
				t.Fatalf("the phone does not say what is asked: %+v", p)
			}
		}
	}
	ab, _ := json.Marshal(identity.ApproveRequest{Session: login.Get("login"), VerificationCode: code, PIN: cscLoginPIN})
	if st, body := f.do(t, phone, http.MethodPost, identity.PathMobileApprove, "application/json", ab, nil); st != 200 {
		t.Fatalf("approve: %d %s", st, body)
	}
	st, page, loc := browse(t, br, http.MethodPost, f.base+identity.PathComplete, login)
	for _, pin := range signingPINs {
		if (st != 200 && st != 403) || !strings.Contains(page, `name="signing_pin"`) {
			break
		}
		form := hiddenForm(page)
		form.Set("signing_pin", pin)
		st, page, loc = browse(t, br, http.MethodPost, f.base+identity.PathComplete, form)
	}
	return st, page, loc
}

// codeOf returns the code of a redirect to the signing application.
func codeOf(t *testing.T, what string, st int, page string, loc *url.URL) string {
	t.Helper()
	if st != http.StatusSeeOther || loc == nil || !strings.HasPrefix(loc.String(), cscAppRedirect) || loc.Query().Get("code") == "" {
		t.Fatalf("%s: %d %v %.300s", what, st, loc, page)
	}
	return loc.Query().Get("code")
}

// cscAs calls a CSC method with a bearer token and decodes the answer.
func (f *azFixture) cscAs(t *testing.T, token, method string, body any) (int, map[string]any) {
	t.Helper()
	b, _ := json.Marshal(body)
	st, out := f.do(t, azCaller{name: "signing app", bearer: token}, http.MethodPost, "/csc/v2/"+method, "application/json", b, nil)
	var m map[string]any
	if err := json.Unmarshal(out, &m); err != nil {
		t.Fatalf("%s: %d %s", method, st, out)
	}
	return st, m
}

func sha(s string) []byte {
	h := sha256.Sum256([]byte(s))
	return h[:]
}

func runCSCOAuth2(t *testing.T, postgres bool) {
	f := newAZFixture(t, postgres, func(y, base string) string {
		y = strings.Replace(y, "  issuer: \"\"", "  issuer: "+base, 1)
		return strings.Replace(y, "  codeLifetime: 1m0s", "  codeLifetime: "+cscCodeLife.String(), 1)
	})
	credA := f.credential(t, "citizen-signing", azCitizen(azCitizenA))
	credA2 := f.credential(t, "citizen-signing", azCitizen(azCitizenA)) // locked below
	credB := f.credential(t, "citizen-signing", azCitizen(azCitizenB))
	for _, c := range []struct{ civil, cred string }{{azCitizenA, credA}, {azCitizenA, credA2}, {azCitizenB, credB}} {
		f.setPIN(t, c.civil, c.cred)
	}
	mob := f.issue(t, ca.IssueRequest{Profile: "citizen-auth", Subject: azCitizen(azCitizenA), KeyInHSM: true})
	pinFile := filepath.Join(t.TempDir(), "pin")
	writeFile(t, pinFile, cscLoginPIN)
	mustThiqa(t, f.env, "oidc", "mobile", "enrol", "--data", f.dir, "--credential", mob.CredentialID, "--pin-file", pinFile)
	card, _ := f.clientCert(t, "citizen-auth", azCitizen(azCitizenA))

	// The signing application registers like a portal, and finds the
	// authorization server in /csc/v2/info.
	app := &signingApp{key: nil}
	app.key, _ = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	set, _ := json.Marshal(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: &app.key.PublicKey, KeyID: "app-1", Algorithm: "ES256", Use: "sig"}}})
	jf := filepath.Join(t.TempDir(), "app.jwks.json")
	writeFile(t, jf, string(set))
	app.id = lastLine(mustThiqa(t, f.env, "oidc", "client", "add", "--data", f.dir, "--name", "Signing app", "--redirect-uri", cscAppRedirect, "--jwks-file", jf).stdout)
	st, info := f.cscAs(t, "", "info", map[string]any{})
	base, _ := info["oauth2"].(string)
	if st != 200 || base != f.base+"/csc/v2" || !strings.Contains(strings.Join(anyStrings(info["authType"]), " "), "oauth2code") {
		t.Fatalf("info: %d %v", st, info)
	}
	app.issuer, app.tokenEP = f.base, base+"/oauth2/token"
	app.conf = oauth2.Config{ClientID: app.id, RedirectURL: cscAppRedirect,
		Endpoint: oauth2.Endpoint{AuthURL: base + "/oauth2/authorize", TokenURL: app.tokenEP, AuthStyle: oauth2.AuthStyleInParams}}
	app.ctx = context.WithValue(context.Background(), oauth2.HTTPClient, f.citizenBrowser(nil))
	cert := credentialCert(t, f, credA)

	// The code the expired-code check (bad input) redeems: issued now, it
	// ages while the other checks run, and that check waits only for what
	// is left of its lifetime instead of a whole lifetime.
	lateURL, lateVerifier := app.authURL("credential", "s-5", credentialParams(credA, sha("late"))...)
	st, page, loc := f.cscMobile(t, lateURL, azCitizenA, azPIN)
	lateCode := codeOf(t, "authorization", st, page, loc)
	lateExpires := time.Now().Add(cscCodeLife) // the server set the code's expiry before this

	t.Run("scope service", func(t *testing.T) {
		authURL, verifier := app.authURL("service", "s-1")
		st, page, loc := f.cscMobile(t, authURL, azCitizenA)
		tok, err := app.exchange(t, codeOf(t, "service login", st, page, loc), verifier, app.issuer) // aud: the issuer identifier
		if err != nil || tok.Extra("scope") != "service" || tok.TokenType != "Bearer" {
			t.Fatalf("exchange: %v %+v", err, tok)
		}
		at := tok.AccessToken
		if st, m := f.cscAs(t, at, "credentials/list", map[string]any{}); st != 200 || len(anyStrings(m["credentialIDs"])) != 2 {
			t.Fatalf("credentials/list: %d %v", st, m)
		}
		if st, m := f.cscAs(t, at, "credentials/info", map[string]any{"credentialID": credA}); st != 200 || m["SCAL"] != "2" {
			t.Fatalf("credentials/info: %d %v", st, m)
		}
		h := sha("service hash")
		st, m := f.cscAs(t, at, "credentials/authorize", map[string]any{"credentialID": credA, "numSignatures": 1,
			"hashes": []string{base64.StdEncoding.EncodeToString(h)}, "hashAlgorithmOID": "2.16.840.1.101.3.4.2.1", "authData": []map[string]string{{"id": "PIN", "value": azPIN}}})
		if st != 200 || m["SAD"] == nil {
			t.Fatalf("credentials/authorize: %d %v", st, m)
		}
		sigs := signHashAs(t, f, at, credA, m["SAD"].(string), 200, "", h)
		verifyECDSA(t, cert, h, sigs[0])
		// /api/v1/sign for this citizen, with the PIN; not another's credential.
		pdf := samplePDF(t, 4<<10)
		app := azCaller{name: "signing app", bearer: at}
		if st, body := f.do(t, app, http.MethodPost, "/api/v1/sign?level=B-B&credential="+credA, "application/pdf", pdf, map[string]string{signing.PINHeader: azPIN}); st != 200 || !strings.HasPrefix(string(body), "%PDF") {
			t.Fatalf("/api/v1/sign with the service token: %d %.300s", st, body)
		}
		before := f.snapshot(t)
		if st, body := f.do(t, app, http.MethodPost, "/api/v1/sign?level=B-B&credential="+credB, "application/pdf", pdf, map[string]string{signing.PINHeader: azPIN}); st != 403 {
			t.Fatalf("/api/v1/sign of another citizen's credential: %d %.300s", st, body)
		}
		if st, m := f.cscAs(t, at, "credentials/info", map[string]any{"credentialID": credB}); st != 400 || m["error"] != "invalid_request" {
			t.Fatalf("credentials/info of another citizen's credential: %d %v", st, m)
		}
		// Nothing but the signing routes: not the PIN, not the phone side.
		for _, c := range []struct{ method, path, ctype, body string }{
			{http.MethodPost, "/api/v1/credentials/" + credA + "/pin", "application/json", `{"pin":"111111"}`},
			{http.MethodGet, identity.PathMobileList, "", ""},
			{http.MethodGet, "/api/v1/whoami", "", ""},
		} {
			if st, body := f.do(t, app, c.method, c.path, c.ctype, []byte(c.body), nil); st != 403 || !strings.Contains(string(body), "delegated access token") {
				t.Fatalf("%s %s with the service token: %d %s", c.method, c.path, st, body)
			}
		}
		if after := f.snapshot(t); after != before {
			t.Fatal("refused requests of the service token changed the store")
		}
	})

	t.Run("scope credential, mobile ID", func(t *testing.T) {
		h1, h2 := sha("page 1"), sha("page 2")
		authURL, verifier := app.authURL("credential", "s-2", credentialParams(credA, h1, h2)...)
		st, page, loc := f.cscMobile(t, authURL, azCitizenA, azPIN)
		tok, err := app.exchange(t, codeOf(t, "credential authorization", st, page, loc), verifier, app.tokenEP) // aud: the token endpoint
		if err != nil || tok.Extra("scope") != "credential" || tok.Extra("credentialID") != credA {
			t.Fatalf("exchange: %v %+v", err, tok)
		}
		at := tok.AccessToken
		// Another hash: refused before the authorisation is spent, audited.
		before, head := f.snapshotOf(t, "signing_sads", "signing_credentials"), f.auditHead(t)
		signHashAs(t, f, at, credA, "", 400, "Hash is not authorized", h1, sha("forged"))
		if f.snapshotOf(t, "signing_sads", "signing_credentials") != before {
			t.Fatal("a refused signHash changed the store")
		}
		if recs, _ := f.auditSince(t, head); len(recs) != 1 || recs[0].action != signing.ActionSignHash || recs[0].outcome != "refused" {
			t.Fatalf("refused signHash audited as %+v", recs)
		}
		// Another credential, or the list: refused.
		signHashAs(t, f, at, credA2, "", 400, "credentialID", h1)
		if st, m := f.cscAs(t, at, "credentials/list", map[string]any{}); st != 403 || m["error"] != "access_denied" {
			t.Fatalf("credentials/list with a credential token: %d %v", st, m)
		}
		// Exactly its hashes, without a SAD: signed; then never again.
		sigs := signHashAs(t, f, at, credA, "", 200, "", h2, h1)
		verifyECDSA(t, cert, h2, sigs[0])
		verifyECDSA(t, cert, h1, sigs[1])
		signHashAs(t, f, at, credA, "", 400, "already used", h1)
	})

	t.Run("scope credential, ID card over mutual TLS", func(t *testing.T) {
		h := sha("card")
		authURL, verifier := app.authURL("credential", "s-3", credentialParams(credA, h)...)
		br := f.citizenBrowser(card)
		st, page, _ := browse(t, br, http.MethodGet, authURL, nil)
		if st != 200 || !strings.Contains(page, `name="signing_pin"`) {
			t.Fatalf("PIN page over mTLS: %d %.300s", st, page)
		}
		form := hiddenForm(page)
		form.Set("signing_pin", azPIN)
		st, page, loc := browse(t, br, http.MethodPost, f.base+identity.PathCSCAuthorize, form)
		tok, err := app.exchange(t, codeOf(t, "mTLS credential authorization", st, page, loc), verifier, app.issuer)
		if err != nil {
			t.Fatal(err)
		}
		verifyECDSA(t, cert, h, signHashAs(t, f, tok.AccessToken, credA, "", 200, "", h)[0])
	})

	t.Run("bad input", func(t *testing.T) {
		refusedAuthorize := func(what string, want int, errCode string, mod func(q url.Values)) {
			t.Helper()
			authURL, _ := app.authURL("service", "s-4")
			u, _ := url.Parse(authURL)
			q := u.Query()
			mod(q)
			u.RawQuery = q.Encode()
			before, head := f.snapshot(t), f.auditHead(t)
			st, _, loc := browse(t, f.citizenBrowser(nil), http.MethodGet, u.String(), nil)
			switch {
			case st != want:
				t.Fatalf("%s: %d, want %d", what, st, want)
			case errCode == "" && loc != nil:
				t.Fatalf("%s: redirected to %s", what, loc)
			case errCode != "" && (loc == nil || loc.Query().Get("error") != errCode || !strings.HasPrefix(loc.String(), cscAppRedirect)):
				t.Fatalf("%s: redirect %v, want error %s", what, loc, errCode)
			}
			if f.snapshot(t) != before {
				t.Fatalf("%s changed the store", what)
			}
			if recs, _ := f.auditSince(t, head); len(recs) != 1 || recs[0].action != identity.ActionCSCAuthorize || recs[0].outcome != "refused" {
				t.Fatalf("%s audited as %+v", what, recs)
			}
		}
		refusedAuthorize("wrong redirect URI", 400, "", func(q url.Values) { q.Set("redirect_uri", "https://evil.example/cb") })
		refusedAuthorize("unknown scope", 303, "invalid_scope", func(q url.Values) { q.Set("scope", "openid") })
		refusedAuthorize("no PKCE", 303, "invalid_request", func(q url.Values) { q.Del("code_challenge") })
		refusedAuthorize("credential without hashes", 303, "invalid_request", func(q url.Values) { q.Set("scope", "credential"); q.Set("credentialID", credA) })

		refusedToken := func(what, code, verifier, aud, errCode string) {
			t.Helper()
			before, head := f.snapshotOf(t, "signing_sads", "signing_credentials"), f.auditHead(t)
			_, err := app.exchange(t, code, verifier, aud)
			var re *oauth2.RetrieveError
			if !errors.As(err, &re) || re.ErrorCode != errCode {
				t.Fatalf("%s: %v, want %s", what, err, errCode)
			}
			if errCode == "invalid_client" && re.Response.Header.Get("WWW-Authenticate") != "" {
				t.Fatalf("%s: invalid_client with a challenge %q", what, re.Response.Header.Get("WWW-Authenticate"))
			}
			if f.snapshotOf(t, "signing_sads", "signing_credentials") != before {
				t.Fatalf("%s changed the signing service's store", what)
			}
			if recs, _ := f.auditSince(t, head); len(recs) != 1 || recs[0].action != identity.ActionCSCToken || recs[0].outcome != "refused" {
				t.Fatalf("%s audited as %+v", what, recs)
			}
		}
		newCode := func(scope string, extra ...oauth2.AuthCodeOption) (string, string) {
			authURL, verifier := app.authURL(scope, "s-5", extra...)
			st, page, loc := f.cscMobile(t, authURL, azCitizenA, azPIN)
			return codeOf(t, "authorization", st, page, loc), verifier
		}
		code, _ := newCode("credential", credentialParams(credA, sha("v"))...)
		refusedToken("wrong PKCE verifier", code, oauth2.GenerateVerifier(), app.issuer, "invalid_grant")
		code, verifier := newCode("service")
		refusedToken("assertion for another audience", code, verifier, f.base+identity.PathToken, "invalid_client")
		refusedToken("assertion for another server", code, verifier, "https://other.example.om", "invalid_client")
		tok, err := app.exchange(t, code, verifier, app.issuer)
		if err != nil {
			t.Fatalf("the code after refused client assertions: %v", err)
		}
		refusedToken("reused code", code, verifier, app.issuer, "invalid_grant")
		if st, m := f.cscAs(t, tok.AccessToken, "credentials/list", map[string]any{}); st != 401 || m["error"] != "invalid_token" {
			t.Fatalf("the token of a reused code: %d %v", st, m)
		}
		time.Sleep(time.Until(lateExpires.Add(50 * time.Millisecond)))
		refusedToken("expired code", lateCode, lateVerifier, app.issuer, "invalid_grant")

		// Wrong signing PINs: the page again, then the lockout
		// (access_denied), each check audited; the credential is locked
		// for credentials/authorize too.
		authURL, _ := app.authURL("credential", "s-6", credentialParams(credA2, sha("w"))...)
		head := f.auditHead(t)
		st, page, _ := f.cscMobile(t, authURL, azCitizenA, "000000")
		if st != 403 || !strings.Contains(page, "Wrong signing PIN") {
			t.Fatalf("wrong PIN: %d %.300s", st, page)
		}
		authURL, _ = app.authURL("credential", "s-7", credentialParams(credA2, sha("w"))...)
		st, _, loc := f.cscMobile(t, authURL, azCitizenA, "000001", "000002", "000003", "000004")
		if st != 303 || loc.Query().Get("error") != "access_denied" || !strings.Contains(loc.Query().Get("error_description"), "locked") {
			t.Fatalf("locked PIN: %d %v", st, loc)
		}
		recs, _ := f.auditSince(t, head)
		n := 0
		for _, r := range recs {
			if r.action == signing.ActionAuthorize && r.outcome == "refused" && r.details["method"] == "oauth2" && r.details["client"] == app.id {
				n++
			}
		}
		if n != 5 {
			t.Fatalf("%d refused signing-PIN checks audited, want 5", n)
		}
		if st, m := f.cscAs(t, f.token(t, azCitizenA, "citizen"), "credentials/authorize", map[string]any{"credentialID": credA2, "numSignatures": 1,
			"hashes": []string{base64.StdEncoding.EncodeToString(sha("w"))}, "hashAlgorithmOID": "2.16.840.1.101.3.4.2.1", "PIN": azPIN}); st != 400 || !strings.Contains(m["error_description"].(string), "locked") {
			t.Fatalf("authorize of the locked credential: %d %v", st, m)
		}
	})

	f.srv.stop(t)
	mustThiqa(t, f.env, "audit", "verify", "--data", f.dir)
}

// signHashAs calls signatures/signHash with token (and sad, when set) and
// checks the status (and, for a refusal, the CSC error naming text); it
// returns the signatures.
func signHashAs(t *testing.T, f *azFixture, token, cred, sad string, want int, text string, hashes ...[]byte) [][]byte {
	t.Helper()
	var hs []string
	for _, h := range hashes {
		hs = append(hs, base64.StdEncoding.EncodeToString(h))
	}
	body := map[string]any{"credentialID": cred, "hashes": hs, "hashAlgorithmOID": "2.16.840.1.101.3.4.2.1", "signAlgo": "1.2.840.10045.4.3.2"}
	if sad != "" {
		body["SAD"] = sad
	}
	st, m := f.cscAs(t, token, "signatures/signHash", body)
	if st != want || (want != 200 && (m["error"] != "invalid_request" || !strings.Contains(m["error_description"].(string), text))) {
		t.Fatalf("signHash: %d %v, want %d naming %q", st, m, want, text)
	}
	var out [][]byte
	for _, s := range anyStrings(m["signatures"]) {
		b, _ := base64.StdEncoding.DecodeString(s)
		out = append(out, b)
	}
	if want == 200 && len(out) != len(hashes) {
		t.Fatalf("signHash: %d signatures for %d hashes", len(out), len(hashes))
	}
	return out
}

// credentialCert reads the certificate of a citizen-signing credential.
func credentialCert(t *testing.T, f *azFixture, cred string) *x509.Certificate {
	t.Helper()
	_, m := f.cscAs(t, f.token(t, azCitizenA, "citizen"), "credentials/info", map[string]any{"credentialID": cred})
	c, _ := m["cert"].(map[string]any)
	certs := anyStrings(c["certificates"])
	if len(certs) == 0 {
		t.Fatalf("credentials/info: %v", m)
	}
	der, _ := base64.StdEncoding.DecodeString(certs[0])
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return cert
}

func verifyECDSA(t *testing.T, cert *x509.Certificate, hash, sig []byte) {
	t.Helper()
	if !ecdsa.VerifyASN1(cert.PublicKey.(*ecdsa.PublicKey), hash, sig) {
		t.Fatal("the signature does not verify with the credential's certificate")
	}
}

func anyStrings(v any) []string {
	var out []string
	if l, ok := v.([]any); ok {
		for _, x := range l {
			if s, ok := x.(string); ok {
				out = append(out, s)
			}
		}
	}
	return out
}
