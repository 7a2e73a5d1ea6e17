package identity

import (
	"encoding/json"
	"net/http"
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
