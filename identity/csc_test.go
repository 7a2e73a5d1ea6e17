package identity

import (
	"crypto/sha256"
	"crypto/tls"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"

	"github.com/thiqa/thiqa/internal/auth"
	"github.com/thiqa/thiqa/internal/ratelimit"
)

const (
	testSigningAudience = "https://sign.example.om/csc/v2"
	testSignCred        = "sign-1"
	testSignPIN         = "482916"
)

func hashOf(s string) []byte {
	h := sha256.Sum256([]byte(s))
	return h[:]
}

// cscQuery is a valid CSC authorization request of scope for the env's
// client; hashes make it a credential authorization of testSignCred.
func (e *env) cscQuery(scope string, hashes ...[]byte) url.Values {
	q := url.Values{
		"client_id": {e.client.ID}, "redirect_uri": {testRedir}, "response_type": {"code"}, "scope": {scope},
		"state": {"st-2"}, "code_challenge": {challengeOf(testVerifer)}, "code_challenge_method": {"S256"},
	}
	if len(hashes) > 0 {
		var hs []string
		for _, h := range hashes {
			hs = append(hs, base64.RawURLEncoding.EncodeToString(h))
		}
		q.Set("credentialID", testSignCred)
		q.Set("numSignatures", strconv.Itoa(len(hashes)))
		q.Set("hashes", strings.Join(hs, ","))
		q.Set("hashAlgorithmOID", "2.16.840.1.101.3.4.2.1")
		q.Set("description", "Contract 42")
	}
	return q
}

// post posts form to path with the browser and returns status, body and
// the redirect query (nil when not redirected).
func (e *env) post(hc *http.Client, path string, form url.Values) (int, string, url.Values) {
	e.t.Helper()
	resp, err := hc.PostForm(e.srv.URL+path, form)
	if err != nil {
		e.t.Fatal(err)
	}
	body := readBody(e.t, resp)
	return resp.StatusCode, body, redirectQuery(e.t, resp)
}

// cscMobile runs the browser and phone sides of a mobile login for a CSC
// request up to the answer of complete: status, page, redirect query, and
// the login's session and browser key.
func (e *env) cscMobile(q url.Values) (int, string, url.Values, url.Values) {
	e.t.Helper()
	f := url.Values{}
	for k, v := range q {
		f[k] = v
	}
	f.Set("civil_number", testCivil)
	st, body, _ := e.post(e.browser, PathCSCAuthorize, f)
	m1, m2, m3 := reSession.FindStringSubmatch(body), reKey.FindStringSubmatch(body), reCode.FindStringSubmatch(body)
	if st != 200 || m1 == nil || m2 == nil || m3 == nil {
		e.t.Fatalf("CSC authorize with a civil number: %d %s", st, body)
	}
	if st := e.approve(m1[1], m3[1], testPIN); st != 200 {
		e.t.Fatalf("approve: %d", st)
	}
	login := url.Values{"login": {m1[1]}, "key": {m2[1]}}
	st, body, rq := e.post(e.browser, PathComplete, login)
	return st, body, rq, login
}

// cscExchange redeems code at the CSC token endpoint with an assertion
// naming aud.
func (e *env) cscExchange(code, aud string) (int, map[string]any) {
	e.t.Helper()
	f := e.tokenForm(code)
	f.Set("client_assertion", e.assertion(e.client.ID, e.ckey, func(c *jwt.Claims) { c.Audience = jwt.Audience{aud} }))
	resp, err := e.browser.PostForm(e.srv.URL+PathCSCToken, f)
	if err != nil {
		e.t.Fatal(err)
	}
	var out map[string]any
	_ = json.Unmarshal([]byte(readBody(e.t, resp)), &out)
	return resp.StatusCode, out
}

// cscAccess verifies a CSC access token and returns its claims.
func (e *env) cscAccess(raw string) cscClaims {
	e.t.Helper()
	tok, err := jwt.ParseSigned(raw, []jose.SignatureAlgorithm{jose.ES256})
	if err != nil || tok.Headers[0].ExtraHeaders[jose.HeaderType] != "at+jwt" {
		e.t.Fatalf("access token: %v %+v", err, tok)
	}
	var c cscClaims
	if err := tok.Claims(e.p.PublicJWK().Key, &c); err != nil {
		e.t.Fatal(err)
	}
	return c
}

var reHashes = regexp.MustCompile(`<li><code>([0-9a-f]+)</code></li>`)

func TestCSCServiceScope(t *testing.T) {
	e := newEnv(t, false)
	resp, err := e.browser.Get(e.srv.URL + PathCSCAuthorize + "?" + e.cscQuery("service").Encode())
	if err != nil {
		t.Fatal(err)
	}
	if body := readBody(t, resp); resp.StatusCode != 200 || !strings.Contains(body, `id="purpose"`) || !strings.Contains(body, `action="`+e.srv.URL+PathCSCAuthorize) {
		t.Fatalf("login page: %d %s", resp.StatusCode, body)
	}
	st, _, q, _ := e.cscMobile(e.cscQuery("service"))
	if st != http.StatusSeeOther || q.Get("code") == "" || q.Get("state") != "st-2" || q.Get("iss") != e.srv.URL {
		t.Fatalf("complete: %d %v", st, q)
	}
	// The code is the CSC endpoint's: refused (and burnt) at the OpenID
	// Connect token endpoint.
	code := q.Get("code")
	if st, out := e.exchange(e.tokenForm(code)); st != 400 || out["error"] != "invalid_grant" {
		t.Fatalf("CSC code at /oidc/token: %d %v", st, out)
	}
	_, _, q, _ = e.cscMobile(e.cscQuery("service"))
	st, out := e.cscExchange(q.Get("code"), e.srv.URL) // aud: the issuer identifier
	if st != 200 || out["token_type"] != "Bearer" || out["scope"] != "service" || out["expires_in"] == nil || out["id_token"] != nil {
		t.Fatalf("token: %d %v", st, out)
	}
	c := e.cscAccess(out["access_token"].(string))
	if c.Subject != testCivil || c.Issuer != e.srv.URL || len(c.Audience) != 1 || c.Audience[0] != testSigningAudience ||
		c.ClientID != e.client.ID || c.Scope != auth.ScopeService || c.SAD != "" || c.ID == "" || c.ACR == "" {
		t.Fatalf("access token claims: %+v", c)
	}
	// Not a userinfo token.
	if st, _ := e.userinfo(out["access_token"].(string)); st != 401 {
		t.Fatalf("CSC token at userinfo: %d", st)
	}
	// An OpenID Connect code is refused at the CSC token endpoint.
	if st, out := e.cscExchange(e.mobileLogin(), e.srv.URL+PathCSCToken); st != 400 || out["error"] != "invalid_grant" {
		t.Fatalf("OIDC code at the CSC token endpoint: %d %v", st, out)
	}
	if n := len(e.audit.find(ActionCSCToken, "success")); n != 1 {
		t.Fatalf("%d CSC token issuances audited", n)
	}
}

func TestCSCCredentialScope(t *testing.T) {
	e := newEnv(t, false)
	h1, h2 := hashOf("doc 1"), hashOf("doc 2")
	// The phone shows what is asked before the citizen approves.
	s, _, _ := e.startMobileAt(PathCSCAuthorize, e.cscQuery("credential", h1, h2), testCivil)
	if st, pend := e.listAs(citizenCredential(testCivil), ""); st != 200 || len(pend) != 1 || pend[0].Session != s ||
		pend[0].Scope != "credential" || pend[0].CredentialID != testSignCred || pend[0].NumSignatures != 2 {
		t.Fatalf("pending: %d %+v", st, pend)
	}
	st, page, q, login := e.cscMobile(e.cscQuery("credential", h1, h2))
	got := reHashes.FindAllStringSubmatch(page, -1)
	if st != 200 || q != nil || len(got) != 2 || got[0][1] != hex.EncodeToString(h1) || !strings.Contains(page, testSignCred) ||
		!strings.Contains(page, "Contract 42") || !strings.Contains(page, `name="signing_pin"`) {
		t.Fatalf("PIN page: %d %v %s", st, q, page)
	}
	// A wrong PIN: the page again; the right one: the code.
	pin := func(v string) (int, string, url.Values) {
		f := url.Values{"login": login["login"], "key": login["key"], "signing_pin": {v}}
		return e.post(e.browser, PathComplete, f)
	}
	if st, body, q := pin("000000"); st != http.StatusForbidden || q != nil || !strings.Contains(body, "Wrong signing PIN") {
		t.Fatalf("wrong PIN: %d %v", st, q)
	}
	st, _, q = pin(testSignPIN)
	if st != http.StatusSeeOther || q.Get("code") == "" {
		t.Fatalf("right PIN: %d %v", st, q)
	}
	// The login is used: the PIN page cannot be replayed.
	if st, _, q := pin(testSignPIN); st == http.StatusSeeOther || q != nil {
		t.Fatalf("PIN again after the code: %d %v", st, q)
	}
	st, out := e.cscExchange(q.Get("code"), e.srv.URL+PathCSCToken)
	if st != 200 || out["scope"] != "credential" || out["credentialID"] != testSignCred {
		t.Fatalf("token: %d %v", st, out)
	}
	c := e.cscAccess(out["access_token"].(string))
	if c.Scope != auth.ScopeCredential || c.CredentialID != testSignCred || c.NumSignatures != 2 || c.SAD != "sad-1" ||
		c.HashAlgorithmOID != "2.16.840.1.101.3.4.2.1" || strings.Join(c.Hashes, ",") != base64.RawURLEncoding.EncodeToString(h1)+","+base64.RawURLEncoding.EncodeToString(h2) ||
		c.Expiry.Time().After(time.Now().Add(2*time.Minute+time.Second)) {
		t.Fatalf("credential token claims: %+v", c)
	}
	if len(e.signing.activated) != 1 || e.signing.checks[0] != testSignCred+":refused" || e.signing.checks[1] != testSignCred+":success" {
		t.Fatalf("signing service saw %v %v", e.signing.activated, e.signing.checks)
	}

	// Three wrong PINs lock the credential: access_denied to the client,
	// and the next authorization is refused at once.
	_, _, _, login = e.cscMobile(e.cscQuery("credential", h1))
	pin("1")
	pin("2")
	if st, _, q := pin("3"); st != http.StatusSeeOther || q.Get("error") != "access_denied" || !strings.Contains(q.Get("error_description"), "locked") {
		t.Fatalf("locked PIN: %d %v", st, q)
	}
	if st, _, q, _ := e.cscMobile(e.cscQuery("credential", h1)); st != http.StatusSeeOther || q.Get("error") != "access_denied" {
		t.Fatalf("authorization of a locked credential: %d %v", st, q)
	}

	// Another citizen's credential: access_denied, no PIN page.
	qq := e.cscQuery("credential", h1)
	qq.Set("credentialID", "sign-other")
	if st, _, q, _ := e.cscMobile(qq); st != http.StatusSeeOther || q.Get("error") != "access_denied" {
		t.Fatalf("another citizen's credential: %d %v", st, q)
	}
	if n := len(e.audit.find("oidc.login", "refused")); n < 3 {
		t.Fatalf("%d refused logins audited", n)
	}
}

func TestCSCCredentialOverMutualTLS(t *testing.T) {
	e := newEnv(t, true)
	cert, key := e.pki.citizen(t, testCivil, time.Now().Add(time.Hour))
	e.status.profiles[cert.SerialNumber.String()] = ProfileCitizenAuth
	tr := e.srv.Client().Transport.(*http.Transport).Clone()
	tr.TLSClientConfig.Certificates = []tls.Certificate{{Certificate: [][]byte{cert.Raw}, PrivateKey: key}}
	card := &http.Client{Transport: tr, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	q := e.cscQuery("credential", hashOf("x"))
	resp, err := card.Get(e.srv.URL + PathCSCAuthorize + "?" + q.Encode())
	if err != nil {
		t.Fatal(err)
	}
	page := readBody(t, resp)
	if resp.StatusCode != 200 || !strings.Contains(page, `name="signing_pin"`) || !strings.Contains(page, `name="hashes"`) {
		t.Fatalf("PIN page over mTLS: %d %s", resp.StatusCode, page)
	}
	// The PIN in a query string is never read.
	q.Set("signing_pin", testSignPIN)
	if resp, _ := card.Get(e.srv.URL + PathCSCAuthorize + "?" + q.Encode()); resp.StatusCode != 200 {
		t.Fatalf("PIN in the query: %d", resp.StatusCode)
	}
	st, _, rq := e.post(card, PathCSCAuthorize, q)
	if st != http.StatusSeeOther || rq.Get("code") == "" {
		t.Fatalf("PIN over mTLS: %d %v", st, rq)
	}
	if st, out := e.cscExchange(rq.Get("code"), e.srv.URL); st != 200 || out["credentialID"] != testSignCred {
		t.Fatalf("token: %d %v", st, out)
	}
	// Without the certificate the same POST is a mobile-ID form, not a PIN check.
	if st, body, rq := e.post(e.browser, PathCSCAuthorize, q); st != 200 || rq != nil || strings.Contains(body, `name="signing_pin"`) {
		t.Fatalf("PIN without the certificate: %d %v", st, rq)
	}
}

func TestCSCBadRequests(t *testing.T) {
	e := newEnv(t, false)
	// All 18 come from one address, more than its budget of recorded
	// refusals (TestAuthorizeRefusalsBounded checks that): each must be
	// recorded here.
	e.p.authorizeRefusals = ratelimit.NewRefusalBudget(1, 100, ratelimit.OverallRate, ratelimit.OverallBurst, time.Now)
	authorize := func(q url.Values) (int, url.Values) {
		resp, err := e.browser.Get(e.srv.URL + PathCSCAuthorize + "?" + q.Encode())
		if err != nil {
			t.Fatal(err)
		}
		readBody(t, resp)
		return resp.StatusCode, redirectQuery(t, resp)
	}
	h := hashOf("x")
	for name, c := range map[string]struct {
		mod  func(url.Values)
		code string
	}{
		"openid scope":          {func(q url.Values) { q.Set("scope", "openid") }, "invalid_scope"},
		"two scopes":            {func(q url.Values) { q.Set("scope", "service credential") }, "invalid_scope"},
		"unknown scope":         {func(q url.Values) { q.Set("scope", "admin") }, "invalid_scope"},
		"no PKCE":               {func(q url.Values) { q.Del("code_challenge_method") }, "invalid_request"},
		"plain PKCE":            {func(q url.Values) { q.Set("code_challenge_method", "plain") }, "invalid_request"},
		"implicit flow":         {func(q url.Values) { q.Set("response_type", "token") }, "unsupported_response_type"},
		"no response_type":      {func(q url.Values) { q.Del("response_type") }, "invalid_request"},
		"no credentialID":       {func(q url.Values) { q.Del("credentialID") }, "invalid_request"},
		"signatureQualifier":    {func(q url.Values) { q.Del("credentialID"); q.Set("signatureQualifier", "eu_eidas_qes") }, "invalid_request"},
		"numSignatures 2":       {func(q url.Values) { q.Set("numSignatures", "2") }, "invalid_request"},
		"too many signatures":   {func(q url.Values) { q.Set("numSignatures", "9") }, "invalid_request"},
		"hash of another size":  {func(q url.Values) { q.Set("hashes", base64.RawURLEncoding.EncodeToString(h[:20])) }, "invalid_request"},
		"hash not base64":       {func(q url.Values) { q.Set("hashes", "%%%") }, "invalid_request"},
		"SHA-1":                 {func(q url.Values) { q.Set("hashAlgorithmOID", "1.3.14.3.2.26") }, "invalid_request"},
		"authorization_details": {func(q url.Values) { q.Set("authorization_details", `[{"type":"credential"}]`) }, "invalid_request"},
		"request object":        {func(q url.Values) { q.Set("request", "eyJ") }, "request_not_supported"},
	} {
		q := e.cscQuery("credential", h)
		c.mod(q)
		if st, rq := authorize(q); st != http.StatusSeeOther || rq.Get("error") != c.code || rq.Get("state") != "st-2" {
			t.Errorf("%s: %d %v, want %s", name, st, rq, c.code)
		}
	}
	// A wrong redirect URI or client: an error page, never a redirect.
	for name, mod := range map[string]func(url.Values){
		"unregistered redirect URI": func(q url.Values) { q.Set("redirect_uri", "https://evil.example/cb") },
		"unknown client":            func(q url.Values) { q.Set("client_id", "nobody") },
	} {
		q := e.cscQuery("service")
		mod(q)
		if st, rq := authorize(q); st != http.StatusBadRequest || rq != nil {
			t.Errorf("%s: %d %v", name, st, rq)
		}
	}
	if n := len(e.audit.find(ActionCSCAuthorize, "refused")); n != 18 {
		t.Fatalf("%d refused CSC authorization requests audited, want 18", n)
	}

	// Token endpoint: wrong verifier, reuse, expiry, assertion audience.
	code := func() string {
		_, _, q, _ := e.cscMobile(e.cscQuery("service"))
		return q.Get("code")
	}
	exchange := func(f url.Values) (int, map[string]any) {
		resp, err := e.browser.PostForm(e.srv.URL+PathCSCToken, f)
		if err != nil {
			t.Fatal(err)
		}
		var out map[string]any
		_ = json.Unmarshal([]byte(readBody(t, resp)), &out)
		if resp.StatusCode == 401 && resp.Header.Get("WWW-Authenticate") != "" {
			t.Fatalf("invalid_client with a challenge: %q", resp.Header.Get("WWW-Authenticate"))
		}
		return resp.StatusCode, out
	}
	form := func(code string, aud string) url.Values {
		f := e.tokenForm(code)
		f.Set("client_assertion", e.assertion(e.client.ID, e.ckey, func(c *jwt.Claims) { c.Audience = jwt.Audience{aud} }))
		return f
	}
	f := form(code(), e.srv.URL)
	f.Set("code_verifier", strings.Repeat("x", 43))
	if st, out := exchange(f); st != 400 || out["error"] != "invalid_grant" {
		t.Fatalf("wrong verifier: %d %v", st, out)
	}
	f = form(code(), e.srv.URL+PathToken) // the OpenID Connect token endpoint
	if st, out := exchange(f); st != 401 || out["error"] != "invalid_client" {
		t.Fatalf("assertion for the other token endpoint: %d %v", st, out)
	}
	c := code()
	if st, _ := exchange(form(c, e.srv.URL)); st != 200 {
		t.Fatal("first redemption refused")
	}
	if st, out := exchange(form(c, e.srv.URL)); st != 400 || out["error"] != "invalid_grant" || !strings.Contains(out["error_description"].(string), "already used") {
		t.Fatalf("reused code: %d %v", st, out)
	}
	g, _ := e.store.RedeemCode(t.Context(), hashSecret(c), time.Now(), time.Now())
	if g == nil || !g.Revoked {
		t.Fatalf("the reused code's grant is not revoked: %+v", g)
	}
	c = code()
	e.p.now = func() time.Time { return time.Now().Add(65 * time.Second) } // past the code's lifetime (60 s)
	if st, out := exchange(form(c, e.srv.URL)); st != 400 || out["error"] != "invalid_grant" || !strings.Contains(out["error_description"].(string), "expired") {
		t.Fatalf("expired code: %d %v", st, out)
	}
	if n := len(e.audit.find(ActionCSCToken, "refused")); n != 4 {
		t.Fatalf("%d refused CSC token requests audited, want 4", n)
	}
}

// An empty (or over-long) signing PIN never reaches the signing service,
// but its refusal is recorded before the PIN page comes back; unrecorded,
// it is a server_error to the client.
func TestCSCEmptySigningPINRecorded(t *testing.T) {
	e := newEnv(t, false)
	_, _, _, login := e.cscMobile(e.cscQuery("credential", hashOf("doc")))
	pin := func(v string) (int, url.Values) {
		st, _, q := e.post(e.browser, PathComplete, url.Values{"login": login["login"], "key": login["key"], "signing_pin": {v}})
		return st, q
	}
	for i, v := range []string{"", strings.Repeat("7", 65)} {
		if st, q := pin(v); st != http.StatusForbidden || q != nil {
			t.Fatalf("PIN %q: %d %v", v, st, q)
		}
		recs := e.audit.find(ActionCSCAuthorize, "refused")
		if len(recs) != i+1 || recs[i].Actor != testCivil || recs[i].Object != e.client.ID || fmt.Sprint(recs[i].Details) != fmt.Sprint(map[string]any{"credential": testSignCred, "reason": "no signing PIN, or one longer than 64 characters", "scope": "credential"}) {
			t.Fatalf("PIN %q: refusal records %+v", v, recs)
		}
	}
	if len(e.signing.checks) != 0 {
		t.Fatalf("the signing service checked %v", e.signing.checks)
	}
	e.audit.setDown(true)
	if st, q := pin(""); st != http.StatusSeeOther || q.Get("error") != "server_error" {
		t.Fatalf("an empty PIN with the audit log down: %d %v", st, q)
	}
}
