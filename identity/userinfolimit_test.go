package identity

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/prometheus/client_golang/prometheus/testutil"
)

// TestUserinfoRefusalsBounded: userinfo is public and each refusal is
// recorded, so one address sending forged tokens wrote an audit record
// per request, as fast as it could send them. Past the token endpoints'
// burst only the first of each run is recorded (counted in
// thiqa_oidc_rate_limited_total);
// every refusal is still answered 401 invalid_token with its challenge
// (not 429: a client whose token expired behind a flood from its address
// must be told to get a new one, RFC 6750 section 3.1); a valid token
// from the same address is still served, and another address has its own
// budget.
func TestUserinfoRefusalsBounded(t *testing.T) {
	e := newEnvWith(t, false, func(c *Config) { c.TokenRate, c.TokenBurst = 1e-6, 2 })
	st, tok := e.exchange(e.tokenForm(e.mobileLogin()))
	if st != 200 {
		t.Fatalf("token: %d %v", st, tok)
	}
	at := tok["access_token"].(string)
	ask := func(remote, token string) *httptest.ResponseRecorder {
		t.Helper()
		return e.serveFrom(remote, http.MethodGet, PathUserinfo, nil, http.Header{"Authorization": {"Bearer " + token}})
	}
	const attacker = "198.51.100.9:4000"
	for i := range 2 {
		if w := ask(attacker, "abc.def.ghi"); w.Code != http.StatusUnauthorized {
			t.Fatalf("refusal %d within the burst: %d %s", i+1, w.Code, w.Body.String())
		}
	}
	before := len(e.audit.find(ActionUserinfo, "refused"))
	for i := range 20 {
		w := ask(attacker, "abc.def.ghi")
		var body map[string]string
		_ = json.Unmarshal(w.Body.Bytes(), &body)
		if w.Code != http.StatusUnauthorized || w.Header().Get("WWW-Authenticate") == "" || body["error"] != errInvalidToken {
			t.Fatalf("refusal %d past the burst: %d %v %s", i+3, w.Code, w.Header(), w.Body.String())
		}
	}
	recs := e.audit.find(ActionUserinfo, "refused")
	if len(recs) != before+1 {
		t.Fatalf("%d records for 20 refusals past the burst, want 1", len(recs)-before)
	}
	if d := recs[len(recs)-1].Details.(map[string]any); d["limit"] != limitUserinfo || d["address"] != "198.51.100.9" {
		t.Fatalf("record: %+v", recs[len(recs)-1])
	}
	if n := testutil.ToFloat64(e.p.m.limited.WithLabelValues(limitUserinfo)); n != 20 {
		t.Fatalf("thiqa_oidc_rate_limited_total{limit=userinfo} = %v, want 20", n)
	}
	if w := ask(attacker, at); w.Code != http.StatusOK {
		t.Fatalf("a valid token from the limited address: %d %s", w.Code, w.Body.String())
	}
	if w := ask("192.0.2.3:4000", "abc.def.ghi"); w.Code != http.StatusUnauthorized {
		t.Fatalf("another address: %d", w.Code)
	}
}

// TestUserinfoVerifiedRefusalsAlwaysRecorded: a token whose signature
// verified but is refused (its grant revoked after its code was replayed:
// a stolen token at work) names its client and grant, so each of its
// refusals is recorded, past the address's budget spent on forged tokens
// too, as the API's 401s of such tokens are. A forged token from the same
// address stays within the budget.
func TestUserinfoVerifiedRefusalsAlwaysRecorded(t *testing.T) {
	e := newEnvWith(t, false, func(c *Config) { c.TokenRate, c.TokenBurst = 1e-6, 2 })
	form := e.tokenForm(e.mobileLogin())
	st, tok := e.exchange(form)
	if st != 200 {
		t.Fatalf("token: %d %v", st, tok)
	}
	at := tok["access_token"].(string)
	form.Set("client_assertion", e.assertion(e.client.ID, e.ckey, nil))
	if st, _ := e.exchange(form); st != 400 { // the code replayed: its grant is revoked
		t.Fatalf("code replayed: %d", st)
	}
	ask := func(token string) int {
		t.Helper()
		return e.serveFrom("198.51.100.19:4000", http.MethodGet, PathUserinfo, nil, http.Header{"Authorization": {"Bearer " + token}}).Code
	}
	for range 5 { // the address's budget spent on forged tokens
		ask("abc.def.ghi")
	}
	before := len(e.audit.find(ActionUserinfo, "refused"))
	for i := range 6 {
		if code := ask(at); code != http.StatusUnauthorized {
			t.Fatalf("revoked token, request %d: %d, want 401", i+1, code)
		}
	}
	recs := e.audit.find(ActionUserinfo, "refused")
	if n := len(recs) - before; n != 6 {
		t.Fatalf("%d records of 6 refusals of a revoked token past the address's budget, want 6", n)
	}
	if r := recs[len(recs)-1]; r.Actor != "client:"+e.client.ID {
		t.Fatalf("record does not name the client: %+v", r)
	}
	ask("abc.def.ghi")
	if n := len(e.audit.find(ActionUserinfo, "refused")) - before; n != 6 {
		t.Fatalf("a forged token past the budget was recorded (%d records)", n)
	}
}
