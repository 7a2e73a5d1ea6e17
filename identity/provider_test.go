package identity

import (
	"crypto/tls"
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4/jwt"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

func TestMobileLoginEndToEnd(t *testing.T) {
	e := newEnv(t, false)
	// The login page is served for a valid request.
	resp, err := e.browser.Get(e.srv.URL + PathAuthorize + "?" + e.authQuery().Encode())
	if err != nil {
		t.Fatal(err)
	}
	body := readBody(t, resp)
	if resp.StatusCode != 200 || !strings.Contains(body, "الرقم المدني") || !strings.Contains(body, "Civil number") {
		t.Fatalf("login page: %d %s", resp.StatusCode, body)
	}
	s, k, code := e.startMobile(e.authQuery(), testCivil)
	// Before approval the browser waits.
	if q, st := e.complete(s, k); q != nil || st != http.StatusAccepted {
		t.Fatalf("pending complete: %d %v", st, q)
	}
	// The phone lists the session with the same verification code.
	st, pending := e.listAs(citizenCredential(testCivil), "")
	if st != 200 || len(pending) != 1 || pending[0].VerificationCode != code || pending[0].Session != s {
		t.Fatalf("pending sessions: %d %+v", st, pending)
	}
	if st := e.approve(s, code, testPIN); st != 200 {
		t.Fatalf("approve: %d", st)
	}
	q, _ := e.complete(s, k)
	if q == nil || q.Get("code") == "" {
		t.Fatalf("no code: %v", q)
	}
	st, tok := e.exchange(e.tokenForm(q.Get("code")))
	if st != 200 {
		t.Fatalf("token: %d %v", st, tok)
	}
	ic := e.parseIDToken(tok["id_token"].(string))
	if ic.Issuer != e.srv.URL || ic.Audience[0] != e.client.ID || ic.Nonce != "n-1" || ic.ACR != DefaultACR ||
		ic.GivenName != "Aisha" || ic.FamilyName != "Al-Balushi" || ic.Name != "Aisha Al-Balushi" || ic.AuthTime == 0 {
		t.Fatalf("ID token claims: %+v", ic)
	}
	if ic.Subject == testCivil || len(ic.Subject) != 43 {
		t.Fatalf("sub %q should be pairwise", ic.Subject)
	}
	if strings.Join(ic.AMR, ",") != "pop,hwk,pin,mfa" {
		t.Fatalf("amr %v", ic.AMR)
	}
	st, ui := e.userinfo(tok["access_token"].(string))
	if st != 200 || ui["sub"] != ic.Subject || ui["family_name"] != "Al-Balushi" {
		t.Fatalf("userinfo: %d %v", st, ui)
	}
	if n := testutil.ToFloat64(e.p.m.logins.WithLabelValues(MethodMobile, "success")); n != 1 {
		t.Fatalf("login metric %v", n)
	}
	if len(e.audit.find("oidc.login", "success")) != 1 || len(e.audit.find("oidc.token", "success")) != 1 {
		t.Fatalf("audit: %+v", e.audit.entries)
	}
	// A second client of the same sector gets the same pairwise sub, a
	// client allowed the civil number gets the civil number.
	other, _ := e.addClient("portal-civil", true)
	if got := e.p.subject(other, testCivil); got != testCivil {
		t.Fatalf("civil-number client sub %q", got)
	}
	other2 := &Client{ID: "x", RedirectURIs: []string{"https://other.example.om/cb"}}
	if e.p.subject(other2, testCivil) == ic.Subject {
		t.Fatal("pairwise sub is the same across sectors")
	}
}

func TestMTLSLogin(t *testing.T) {
	e := newEnv(t, true)
	cert, key := e.pki.citizen(t, "87654321", time.Now().Add(time.Hour))
	e.status.profiles[cert.SerialNumber.String()] = ProfileCitizenAuth
	tr := e.srv.Client().Transport.(*http.Transport).Clone()
	tr.TLSClientConfig.Certificates = []tls.Certificate{{Certificate: [][]byte{cert.Raw}, PrivateKey: key}}
	hc := &http.Client{Transport: tr, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	get := func() url.Values {
		resp, err := hc.Get(e.srv.URL + PathAuthorize + "?" + e.authQuery().Encode())
		if err != nil {
			t.Fatal(err)
		}
		readBody(t, resp)
		q := redirectQuery(t, resp)
		if q == nil {
			t.Fatalf("no redirect: %d", resp.StatusCode)
		}
		return q
	}
	q := get()
	st, tok := e.exchange(e.tokenForm(q.Get("code")))
	if st != 200 {
		t.Fatalf("token: %d %v", st, tok)
	}
	// The card's key was certified from a CSR: the CA cannot know it is in
	// hardware, so LoA substantial and no hwk.
	ic := e.parseIDToken(tok["id_token"].(string))
	if strings.Join(ic.AMR, ",") != "pop" || ic.ACR != ACRSubstantial || ic.Name != "Aisha Al-Balushi" {
		t.Fatalf("claims %+v", ic)
	}
	// A certificate whose key the CA generated on its token: LoA high, hwk.
	e.status.mu.Lock()
	e.status.onToken[cert.SerialNumber.String()] = true
	e.status.mu.Unlock()
	if _, tok = e.exchange(e.tokenForm(get().Get("code"))); tok["id_token"] == nil {
		t.Fatalf("token: %v", tok)
	}
	if ic := e.parseIDToken(tok["id_token"].(string)); strings.Join(ic.AMR, ",") != "pop,hwk" || ic.ACR != DefaultACR {
		t.Fatalf("claims with a key on the token %+v", ic)
	}
	// Discovery announces both levels.
	resp, err := e.srv.Client().Get(e.srv.URL + PathDiscovery)
	if err != nil {
		t.Fatal(err)
	}
	var meta struct {
		ACRs []string `json:"acr_values_supported"`
	}
	if err := json.Unmarshal([]byte(readBody(t, resp)), &meta); err != nil || strings.Join(meta.ACRs, " ") != DefaultACR+" "+ACRSubstantial {
		t.Fatalf("acr_values_supported %v %v", meta.ACRs, err)
	}
	// Its key reported compromised (its own revocation not yet recorded):
	// refused at once.
	e.status.mu.Lock()
	e.status.blocked = map[string]bool{cert.SerialNumber.String(): true}
	e.status.mu.Unlock()
	if q := get(); q.Get("error") != "access_denied" {
		t.Fatalf("blocked key: %v", q)
	}
	e.status.mu.Lock()
	e.status.blocked = nil
	e.status.mu.Unlock()
	// Revoked now: the same certificate is refused at once.
	e.status.revoke(cert)
	q = get()
	if q.Get("error") != "access_denied" || q.Get("code") != "" || q.Get("state") != "st-1" {
		t.Fatalf("revoked cert: %v", q)
	}
	if len(e.audit.find("oidc.login", "refused")) != 2 {
		t.Fatal("no audit record for each refused login")
	}
	if n := testutil.ToFloat64(e.p.m.logins.WithLabelValues(MethodMTLS, "refused")); n != 2 {
		t.Fatalf("refused metric %v", n)
	}
}

func TestMTLSRefusals(t *testing.T) {
	e := newEnvWith(t, true, func(c *Config) { c.Country = "OM" })
	other := newTestPKI(t)
	// Issued by this CA for citizen-auth, but a number of another country.
	otherCountry, ok := e.pki.citizenOf(t, "IDCAE-"+testCivil, time.Now().Add(time.Hour))
	e.status.profiles[otherCountry.SerialNumber.String()] = ProfileCitizenAuth
	expired, ek := e.pki.citizen(t, "11111111", time.Now().Add(-time.Minute))
	e.status.profiles[expired.SerialNumber.String()] = ProfileCitizenAuth
	foreign, fk := other.citizen(t, "22222222", time.Now().Add(time.Hour))
	unknown, uk := e.pki.citizen(t, "33333333", time.Now().Add(time.Hour)) // not in the CA's records
	wrongProfile, wk := e.pki.citizen(t, "44444444", time.Now().Add(time.Hour))
	e.status.profiles[wrongProfile.SerialNumber.String()] = "citizen-signing"
	for name, tc := range map[string]tls.Certificate{
		"expired":       {Certificate: [][]byte{expired.Raw}, PrivateKey: ek},
		"foreign CA":    {Certificate: [][]byte{foreign.Raw}, PrivateKey: fk},
		"unknown to CA": {Certificate: [][]byte{unknown.Raw}, PrivateKey: uk},
		"wrong profile": {Certificate: [][]byte{wrongProfile.Raw}, PrivateKey: wk},
		"other country": {Certificate: [][]byte{otherCountry.Raw}, PrivateKey: ok},
	} {
		t.Run(name, func(t *testing.T) {
			tr := e.srv.Client().Transport.(*http.Transport).Clone()
			tr.TLSClientConfig.Certificates = []tls.Certificate{tc}
			hc := &http.Client{Transport: tr, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
			before := len(e.audit.find("oidc.login", "refused"))
			resp, err := hc.Get(e.srv.URL + PathAuthorize + "?" + e.authQuery().Encode())
			if err != nil {
				t.Fatal(err)
			}
			readBody(t, resp)
			q := redirectQuery(t, resp)
			if q == nil || q.Get("error") != "access_denied" || q.Get("code") != "" {
				t.Fatalf("want access_denied, got %d %v", resp.StatusCode, q)
			}
			if len(e.audit.find("oidc.login", "refused")) != before+1 {
				t.Fatal("no audit record")
			}
		})
	}
	if len(e.store.grants) != 0 {
		t.Fatalf("grants issued: %d", len(e.store.grants))
	}
}

func TestMobileRefusals(t *testing.T) {
	t.Run("wrong PIN then locked", func(t *testing.T) {
		e := newEnv(t, false)
		for i := range 5 {
			s, k, c := e.startMobile(e.authQuery(), testCivil)
			want := http.StatusForbidden
			if i == 4 {
				want = http.StatusLocked // the try that locks says so
			}
			if st := e.approve(s, c, "0000"); st != want {
				t.Fatalf("try %d: %d", i, st)
			}
			q, _ := e.complete(s, k)
			if q.Get("error") != "access_denied" || q.Get("code") != "" {
				t.Fatalf("browser after wrong PIN: %v", q)
			}
		}
		// Locked: even the right PIN is refused now.
		s, k, c := e.startMobile(e.authQuery(), testCivil)
		if st := e.approve(s, c, testPIN); st != http.StatusLocked {
			t.Fatalf("locked: %d", st)
		}
		if q, _ := e.complete(s, k); q.Get("error") != "access_denied" {
			t.Fatalf("locked browser: %v", q)
		}
		refused := e.audit.find("oidc.login", "refused")
		if len(refused) != 6 || refused[5].Details.(map[string]any)["reason"] != "PIN locked" {
			t.Fatalf("audit: %+v", refused)
		}
		if len(e.store.grants) != 0 {
			t.Fatal("grant issued")
		}
	})
	t.Run("revoked certificate", func(t *testing.T) {
		e := newEnv(t, false)
		e.status.revoke(e.dir.creds[testCivil].Certificate)
		s, k, c := e.startMobile(e.authQuery(), testCivil)
		if st := e.approve(s, c, testPIN); st != http.StatusForbidden {
			t.Fatalf("approve: %d", st)
		}
		if q, _ := e.complete(s, k); q.Get("error") != "access_denied" {
			t.Fatalf("browser: %v", q)
		}
		if len(e.audit.find("oidc.login", "refused")) != 1 || len(e.store.grants) != 0 {
			t.Fatal("want one refusal and no grant")
		}
	})
	t.Run("expired certificate", func(t *testing.T) {
		e := newEnv(t, false)
		cert, key := e.pki.citizen(t, testCivil, time.Now().Add(-time.Second))
		e.status.profiles[cert.SerialNumber.String()] = ProfileCitizenAuth
		e.dir.creds[testCivil] = &RemoteCredential{ID: "cred-2", Certificate: cert}
		e.dir.keys["cred-2"], e.pins.pins["cred-2"] = key, testPIN
		s, _, c := e.startMobile(e.authQuery(), testCivil)
		if st := e.approve(s, c, testPIN); st != http.StatusForbidden {
			t.Fatalf("approve: %d", st)
		}
	})
	t.Run("key does not match certificate", func(t *testing.T) {
		e := newEnv(t, false)
		_, otherKey := e.pki.citizen(t, "99999999", time.Now().Add(time.Hour))
		e.dir.keys[testCredID] = otherKey
		s, _, c := e.startMobile(e.authQuery(), testCivil)
		if st := e.approve(s, c, testPIN); st != http.StatusForbidden {
			t.Fatalf("approve: %d", st)
		}
	})
	t.Run("wrong verification code and unknown citizen", func(t *testing.T) {
		e := newEnv(t, false)
		s, k, c := e.startMobile(e.authQuery(), testCivil)
		wrong := "0000"
		if c == wrong {
			wrong = "1111"
		}
		if st := e.approve(s, wrong, testPIN); st != http.StatusForbidden {
			t.Fatalf("approve: %d", st)
		}
		if st := e.approve(s, c, testPIN); st != http.StatusConflict {
			t.Fatalf("second approve of a denied session: %d", st)
		}
		if q, _ := e.complete(s, k); q.Get("error") != "access_denied" {
			t.Fatalf("browser: %v", q)
		}
		s, _, c = e.startMobile(e.authQuery(), "55555555")
		if st := e.approveAs(citizenCredential("55555555"), s, c, testPIN); st != http.StatusForbidden {
			t.Fatalf("unknown citizen: %d", st)
		}
	})
	t.Run("browser key required", func(t *testing.T) {
		e := newEnv(t, false)
		s, _, c := e.startMobile(e.authQuery(), testCivil)
		e.approve(s, c, testPIN)
		if q, st := e.complete(s, "stolen"); q != nil || st != http.StatusBadRequest {
			t.Fatalf("complete without the browser key: %d %v", st, q)
		}
	})
}

func TestAuthorizeRequestErrors(t *testing.T) {
	e := newEnv(t, false)
	get := func(q url.Values) *http.Response {
		resp, err := e.browser.Get(e.srv.URL + PathAuthorize + "?" + q.Encode())
		if err != nil {
			t.Fatal(err)
		}
		readBody(t, resp)
		return resp
	}
	// Unregistered redirect URI, unknown client: error page, never a redirect.
	for name, mod := range map[string]func(url.Values){
		"unregistered redirect_uri": func(q url.Values) { q.Set("redirect_uri", "https://evil.example/cb") },
		"missing redirect_uri":      func(q url.Values) { q.Del("redirect_uri") },
		"unknown client":            func(q url.Values) { q.Set("client_id", "nobody") },
		"prefix redirect_uri":       func(q url.Values) { q.Set("redirect_uri", testRedir+"/../x") },
	} {
		q := e.authQuery()
		mod(q)
		resp := get(q)
		if resp.StatusCode != http.StatusBadRequest || resp.Header.Get("Location") != "" {
			t.Errorf("%s: %d Location=%q", name, resp.StatusCode, resp.Header.Get("Location"))
		}
	}
	for name, tc := range map[string]struct {
		mod  func(url.Values)
		want string
	}{
		"no PKCE":          {func(q url.Values) { q.Del("code_challenge") }, "invalid_request"},
		"plain PKCE":       {func(q url.Values) { q.Set("code_challenge_method", "plain") }, "invalid_request"},
		"token flow":       {func(q url.Values) { q.Set("response_type", "token") }, "unsupported_response_type"},
		"no response_type": {func(q url.Values) { q.Del("response_type") }, "invalid_request"},
		"no openid scope":  {func(q url.Values) { q.Set("scope", "profile") }, "invalid_scope"},
		"request object":   {func(q url.Values) { q.Set("request", "eyJ") }, "request_not_supported"},
		"prompt none":      {func(q url.Values) { q.Set("prompt", "none") }, "login_required"},
	} {
		q := e.authQuery()
		tc.mod(q)
		resp := get(q)
		rq := redirectQuery(t, resp)
		if rq == nil || rq.Get("error") != tc.want || rq.Get("state") != "st-1" {
			t.Errorf("%s: %d %v", name, resp.StatusCode, rq)
		}
	}
	if n := len(e.audit.find("oidc.authorize", "refused")); n != 11 {
		t.Fatalf("audit records for refused requests: %d", n)
	}
}

func TestTokenRefusals(t *testing.T) {
	e := newEnv(t, false)
	t.Run("reused code revokes", func(t *testing.T) {
		code := e.mobileLogin()
		st, tok := e.exchange(e.tokenForm(code))
		if st != 200 {
			t.Fatalf("first exchange: %d %v", st, tok)
		}
		at := tok["access_token"].(string)
		if st, _ := e.userinfo(at); st != 200 {
			t.Fatalf("userinfo before reuse: %d", st)
		}
		st, out := e.exchange(e.tokenForm(code))
		if st != 400 || out["error"] != "invalid_grant" || out["access_token"] != nil {
			t.Fatalf("reuse: %d %v", st, out)
		}
		if st, out := e.userinfo(at); st != 401 || out["error"] != "invalid_token" {
			t.Fatalf("userinfo after reuse: %d %v", st, out)
		}
	})
	t.Run("wrong PKCE verifier", func(t *testing.T) {
		f := e.tokenForm(e.mobileLogin())
		f.Set("code_verifier", strings.Repeat("a", 43))
		if st, out := e.exchange(f); st != 400 || out["error"] != "invalid_grant" {
			t.Fatalf("%d %v", st, out)
		}
	})
	t.Run("missing PKCE verifier", func(t *testing.T) {
		f := e.tokenForm(e.mobileLogin())
		f.Del("code_verifier")
		if st, out := e.exchange(f); st != 400 || out["error"] != "invalid_grant" {
			t.Fatalf("%d %v", st, out)
		}
	})
	t.Run("stolen code used by another client", func(t *testing.T) {
		code := e.mobileLogin()
		thief, tk := e.addClient("thief", false)
		f := e.tokenForm(code)
		f.Set("client_assertion", e.assertion(thief.ID, tk, nil))
		if st, out := e.exchange(f); st != 400 || out["error"] != "invalid_grant" {
			t.Fatalf("%d %v", st, out)
		}
		// The code is burnt: the rightful client cannot use it either.
		if st, out := e.exchange(e.tokenForm(code)); st != 400 || out["error"] != "invalid_grant" {
			t.Fatalf("after theft: %d %v", st, out)
		}
	})
	t.Run("other redirect_uri", func(t *testing.T) {
		f := e.tokenForm(e.mobileLogin())
		f.Set("redirect_uri", "https://portal.example.om/other")
		if st, out := e.exchange(f); st != 400 || out["error"] != "invalid_grant" {
			t.Fatalf("%d %v", st, out)
		}
	})
	t.Run("replayed assertion", func(t *testing.T) {
		f := e.tokenForm(e.mobileLogin())
		if st, _ := e.exchange(f); st != 200 {
			t.Fatal("first exchange failed")
		}
		f.Set("code", e.mobileLogin())
		if st, out := e.exchange(f); st != 401 || out["error"] != "invalid_client" {
			t.Fatalf("%d %v", st, out)
		}
	})
	for name, mod := range map[string]func(*jwt.Claims){
		"wrong audience":     func(c *jwt.Claims) { c.Audience = jwt.Audience{"https://other.example/token"} },
		"another endpoint":   func(c *jwt.Claims) { c.Audience = jwt.Audience{e.srv.URL + PathUserinfo} },
		"several audiences":  func(c *jwt.Claims) { c.Audience = jwt.Audience{e.srv.URL, "https://other.example"} },
		"expired":            func(c *jwt.Claims) { c.Expiry = jwt.NewNumericDate(time.Now().Add(-time.Hour)) },
		"too long lived":     func(c *jwt.Claims) { c.Expiry = jwt.NewNumericDate(time.Now().Add(time.Hour)) },
		"no jti":             func(c *jwt.Claims) { c.ID = "" },
		"sub is not the iss": func(c *jwt.Claims) { c.Subject = "someone" },
	} {
		t.Run("assertion "+name, func(t *testing.T) {
			f := e.tokenForm(e.mobileLogin())
			f.Set("client_assertion", e.assertion(e.client.ID, e.ckey, mod))
			if st, out := e.exchange(f); st != 401 || out["error"] != "invalid_client" {
				t.Fatalf("%d %v", st, out)
			}
		})
	}
	t.Run("assertion for the issuer identifier", func(t *testing.T) {
		// RFC 7523bis and FAPI 2.0: aud is the issuer; the token endpoint
		// is still accepted (tokenForm).
		f := e.tokenForm(e.mobileLogin())
		f.Set("client_assertion", e.assertion(e.client.ID, e.ckey, func(c *jwt.Claims) { c.Audience = jwt.Audience{e.srv.URL} }))
		if st, out := e.exchange(f); st != 200 || out["access_token"] == nil {
			t.Fatalf("%d %v", st, out)
		}
	})
	t.Run("invalid_client has no Bearer challenge", func(t *testing.T) {
		f := e.tokenForm(e.mobileLogin())
		f.Set("client_assertion", e.assertion(e.client.ID, e.ckey, func(c *jwt.Claims) { c.Audience = jwt.Audience{"https://other.example"} }))
		resp, err := e.browser.PostForm(e.srv.URL+PathToken, f)
		if err != nil {
			t.Fatal(err)
		}
		body := readBody(t, resp)
		if resp.StatusCode != 401 || !strings.Contains(body, "invalid_client") || resp.Header.Get("WWW-Authenticate") != "" {
			t.Fatalf("%d %q %s", resp.StatusCode, resp.Header.Get("WWW-Authenticate"), body)
		}
	})
	t.Run("invalid_client for HTTP Basic has a Basic challenge", func(t *testing.T) {
		// RFC 6749 section 5.2: a client that tried the Authorization
		// header gets 401 with a challenge of the scheme it used.
		f := e.tokenForm(e.mobileLogin())
		f.Del("client_assertion")
		f.Del("client_assertion_type")
		req, _ := http.NewRequest(http.MethodPost, e.srv.URL+PathToken, strings.NewReader(f.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.SetBasicAuth(e.client.ID, "secret")
		resp, err := e.browser.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body := readBody(t, resp)
		if ch := resp.Header.Get("WWW-Authenticate"); resp.StatusCode != 401 || !strings.Contains(body, "invalid_client") || !strings.HasPrefix(ch, "Basic ") {
			t.Fatalf("%d %q %s", resp.StatusCode, ch, body)
		}
	})
	t.Run("tampered assertion", func(t *testing.T) {
		f := e.tokenForm(e.mobileLogin())
		a := e.assertion(e.client.ID, e.ckey, nil)
		parts := strings.Split(a, ".")
		var cl map[string]any
		b, _ := jwtPart(parts[1])
		_ = json.Unmarshal(b, &cl)
		cl["exp"] = time.Now().Add(2 * time.Minute).Unix()
		nb, _ := json.Marshal(cl)
		parts[1] = encPart(nb)
		f.Set("client_assertion", strings.Join(parts, "."))
		if st, out := e.exchange(f); st != 401 || out["error"] != "invalid_client" {
			t.Fatalf("%d %v", st, out)
		}
	})
	t.Run("assertion signed by another key", func(t *testing.T) {
		_, other := e.addClient("other", false)
		f := e.tokenForm(e.mobileLogin())
		f.Set("client_assertion", e.assertion(e.client.ID, other, nil))
		if st, out := e.exchange(f); st != 401 || out["error"] != "invalid_client" {
			t.Fatalf("%d %v", st, out)
		}
	})
	t.Run("grant type", func(t *testing.T) {
		f := e.tokenForm("x")
		f.Set("grant_type", "password")
		if st, out := e.exchange(f); st != 400 || out["error"] != "unsupported_grant_type" {
			t.Fatalf("%d %v", st, out)
		}
		f = e.tokenForm("x") // a fresh client assertion
		f.Del("grant_type")  // RFC 6749 §5.2: a missing parameter is invalid_request
		if st, out := e.exchange(f); st != 400 || out["error"] != "invalid_request" {
			t.Fatalf("no grant_type: %d %v", st, out)
		}
	})
	t.Run("no client auth", func(t *testing.T) {
		f := e.tokenForm(e.mobileLogin())
		f.Del("client_assertion")
		f.Del("client_assertion_type")
		if st, out := e.exchange(f); st != 401 || out["error"] != "invalid_client" {
			t.Fatalf("%d %v", st, out)
		}
	})
	t.Run("tampered access token", func(t *testing.T) {
		st, tok := e.exchange(e.tokenForm(e.mobileLogin()))
		if st != 200 {
			t.Fatal(st)
		}
		parts := strings.Split(tok["access_token"].(string), ".")
		b, _ := jwtPart(parts[1])
		var cl map[string]any
		_ = json.Unmarshal(b, &cl)
		cl["sub"] = testCivil
		nb, _ := json.Marshal(cl)
		parts[1] = encPart(nb)
		if st, out := e.userinfo(strings.Join(parts, ".")); st != 401 || out["error"] != "invalid_token" {
			t.Fatalf("%d %v", st, out)
		}
		// An ID token is no access token.
		if st, _ := e.userinfo(tok["id_token"].(string)); st != 401 {
			t.Fatalf("ID token accepted as access token: %d", st)
		}
	})
	if len(e.audit.find("oidc.token", "refused")) < 14 {
		t.Fatalf("refused token requests audited: %d", len(e.audit.find("oidc.token", "refused")))
	}
}
