package identity

import (
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"
)

// TestUserinfoBearerScheme: the authentication scheme is case-insensitive
// (RFC 9110 section 11.1), so a client library that writes "bearer" is
// served; the token is taken from the header only, never the query.
func TestUserinfoBearerScheme(t *testing.T) {
	e := newEnv(t, false)
	st, tok := e.exchange(e.tokenForm(e.mobileLogin()))
	if st != 200 {
		t.Fatalf("token: %d %v", st, tok)
	}
	at := tok["access_token"].(string)
	ask := func(authz, query string) int {
		t.Helper()
		req, _ := http.NewRequest(http.MethodGet, e.srv.URL+PathUserinfo+query, nil)
		if authz != "" {
			req.Header.Set("Authorization", authz)
		}
		resp, err := e.browser.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		var out map[string]any
		_ = json.Unmarshal([]byte(readBody(t, resp)), &out)
		if resp.StatusCode == 200 && out["sub"] == nil {
			t.Fatalf("userinfo without sub: %v", out)
		}
		return resp.StatusCode
	}
	for _, scheme := range []string{"Bearer", "bearer", "BEARER"} {
		if st := ask(scheme+" "+at, ""); st != 200 {
			t.Fatalf("scheme %q: %d", scheme, st)
		}
	}
	for _, authz := range []string{"Basic " + at, "Bearer ", "Bearer", "DPoP " + at} {
		if st := ask(authz, ""); st != 401 {
			t.Fatalf("%q: %d", authz, st)
		}
	}
	if st := ask("", "?access_token="+at); st != 401 {
		t.Fatalf("token in the query: %d", st)
	}
}

// TestUserinfoFormBody: userinfo takes the access token in an
// application/x-www-form-urlencoded POST body (RFC 6750 section 2.2;
// OpenID Connect Core section 5.3.1), refuses it in both the header and
// the body (section 2: invalid_request, 400), and never takes it from the
// query string or another body.
func TestUserinfoFormBody(t *testing.T) {
	e := newEnv(t, false)
	st, tok := e.exchange(e.tokenForm(e.mobileLogin()))
	if st != 200 {
		t.Fatalf("token: %d %v", st, tok)
	}
	at := tok["access_token"].(string)
	post := func(authz, query, ctype, body string) (int, string, map[string]any) {
		t.Helper()
		req, _ := http.NewRequest(http.MethodPost, e.srv.URL+PathUserinfo+query, strings.NewReader(body))
		if ctype != "" {
			req.Header.Set("Content-Type", ctype)
		}
		if authz != "" {
			req.Header.Set("Authorization", authz)
		}
		resp, err := e.browser.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		var out map[string]any
		_ = json.Unmarshal([]byte(readBody(t, resp)), &out)
		return resp.StatusCode, resp.Header.Get("WWW-Authenticate"), out
	}
	const form = "application/x-www-form-urlencoded"
	body := url.Values{"access_token": {at}}.Encode()
	if st, _, out := post("", "", form, body); st != 200 || out["sub"] == nil {
		t.Fatalf("token in the form body: %d %v", st, out)
	}
	if st, _, out := post("", "", form+"; charset=utf-8", body); st != 200 || out["sub"] == nil {
		t.Fatalf("token in the form body with a charset: %d %v", st, out)
	}
	// The header alone still works on POST, with a form body that has no token.
	if st, _, out := post("Bearer "+at, "", form, "x=1"); st != 200 || out["sub"] == nil {
		t.Fatalf("header token on POST: %d %v", st, out)
	}
	for name, c := range map[string]struct{ authz, body string }{
		"header and body":    {"Bearer " + at, body},
		"two in the body":    {"", body + "&" + body},
		"other scheme, body": {"Basic eDp5", body},
	} {
		st, chal, out := post(c.authz, "", form, c.body)
		if st != 400 || out["error"] != "invalid_request" || !strings.Contains(chal, `error="invalid_request"`) {
			t.Errorf("%s: %d %q %v, want 400 invalid_request", name, st, chal, out)
		}
	}
	for name, c := range map[string]struct{ query, ctype, body string }{
		"query on POST": {"?access_token=" + at, form, ""},
		"JSON body":     {"", "application/json", `{"access_token":"` + at + `"}`},
		"no media type": {"", "", body},
	} {
		if st, _, out := post("", c.query, c.ctype, c.body); st != 401 || out["error"] != "invalid_token" {
			t.Errorf("%s: %d %v, want 401 invalid_token", name, st, out)
		}
	}
	if st, chal, out := post("", "", form, url.Values{"access_token": {at + "x"}}.Encode()); st != 401 || out["error"] != "invalid_token" || !strings.Contains(chal, "invalid_token") {
		t.Errorf("a bad token in the body: %d %q %v", st, chal, out)
	}
	if st, _, out := post("", "", form, "access_token="+strings.Repeat("a", 20<<10)); st != 400 || out["error"] != "invalid_request" {
		t.Errorf("a body over the bound: %d %v", st, out)
	}
	if st, _, out := post("", "", form, "access_token=%zz"); st != 400 || out["error"] != "invalid_request" {
		t.Errorf("a body that does not parse: %d %v", st, out)
	}
	// The query is never read, not even to fail the request on it.
	if st, _, out := post("", "?x=%zz", form, body); st != 200 || out["sub"] == nil {
		t.Errorf("token in the form body, a query that does not parse: %d %v", st, out)
	}
	// A multipart body is not a form body in the sense of RFC 6750.
	mp := "--b\r\nContent-Disposition: form-data; name=\"access_token\"\r\n\r\n" + at + "\r\n--b--\r\n"
	if st, _, out := post("", "", "multipart/form-data; boundary=b", mp); st != 401 || out["error"] != "invalid_token" {
		t.Errorf("token in a multipart body: %d %v", st, out)
	}
	// GET: the body is never read; the header alone counts.
	get := func(authz string) int {
		t.Helper()
		req, _ := http.NewRequest(http.MethodGet, e.srv.URL+PathUserinfo, strings.NewReader(body))
		req.Header.Set("Content-Type", form)
		if authz != "" {
			req.Header.Set("Authorization", authz)
		}
		resp, err := e.browser.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		readBody(t, resp)
		return resp.StatusCode
	}
	if st := get(""); st != 401 {
		t.Errorf("GET with the token in a form body: %d, want 401", st)
	}
	if st := get("Bearer " + at); st != 200 {
		t.Errorf("GET with the header and a form body holding the token too: %d, want 200", st)
	}
}

// TestUserinfoRefusalsAudited: every refused userinfo request leaves an
// oidc.userinfo record before it is answered, naming the client and the
// grant once the token's signature verified (a revoked token, after its
// code was replayed, is a stolen token at work); none holds the token;
// while the log cannot record the refusal, the answer is 503.
func TestUserinfoRefusalsAudited(t *testing.T) {
	e := newEnv(t, false)
	form := e.tokenForm(e.mobileLogin())
	st, tok := e.exchange(form)
	if st != 200 {
		t.Fatalf("token: %d %v", st, tok)
	}
	at := tok["access_token"].(string)
	forged := at[:len(at)-4] + "AAAA"
	if st, _ := e.userinfo(at); st != 200 {
		t.Fatalf("userinfo: %d", st)
	}
	if n := len(e.audit.find(ActionUserinfo, "refused")); n != 0 {
		t.Fatalf("%d refusals recorded for a served request", n)
	}
	// The code again: its grant is revoked, with the access token.
	form.Set("client_assertion", e.assertion(e.client.ID, e.ckey, nil))
	if st, _ := e.exchange(form); st != 400 {
		t.Fatalf("code replayed: %d", st)
	}
	for _, c := range []struct{ token, reason string }{
		{"", "a bearer access token is required"},
		{"abc.def.ghi", "malformed access token"},
		{forged, "access token signature does not verify"},
		{at, "access token revoked"},
	} {
		before := len(e.audit.find(ActionUserinfo, "refused"))
		if st, _ := e.userinfo(c.token); st != 401 {
			t.Fatalf("%q: %d, want 401", c.reason, st)
		}
		recs := e.audit.find(ActionUserinfo, "refused")
		if len(recs) != before+1 {
			t.Fatalf("%q: %d records, want 1", c.reason, len(recs)-before)
		}
		r := recs[len(recs)-1]
		d, _ := r.Details.(map[string]any)
		if d["reason"] != c.reason || d["remote"] == "" {
			t.Fatalf("%q: record %+v", c.reason, r)
		}
		raw, _ := json.Marshal(r)
		if c.token != "" && strings.Contains(string(raw), c.token) {
			t.Fatalf("the record holds the token: %s", raw)
		}
		if c.token == at && (r.Actor != "client:"+e.client.ID || r.Object != e.client.ID || d["grant"] == nil) {
			t.Fatalf("a revoked token's refusal does not name its client and grant: %+v", r)
		}
	}
	e.audit.setDown(true)
	if st, _ := e.userinfo(at); st != http.StatusServiceUnavailable {
		t.Fatalf("refusal unrecorded: %d, want 503", st)
	}
}
