package identity

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus/testutil"
)

// serveFrom serves one request from the client address remote (the TCP
// peer, "ip:port") straight through the provider's routes.
func (e *env) serveFrom(remote, method, path string, form url.Values, header http.Header) *httptest.ResponseRecorder {
	req := httptest.NewRequest(method, e.srv.URL+path, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	for k, v := range header {
		req.Header[k] = v
	}
	req.RemoteAddr = remote
	rec := httptest.NewRecorder()
	e.p.Handler().ServeHTTP(rec, req)
	return rec
}

// TestLoginStartsRateLimited: one address could start mobile logins for
// any number of civil numbers as fast as it liked (MaxPendingLogins
// bounds them per number only). Past Config.LoginBurst the start is
// refused with the login form again, 429 and Retry-After; the first
// refusal of a run is audited, the rest counted; another address, and
// the same address naming another in X-Forwarded-For without a trusted
// proxy, are told apart by the TCP peer.
func TestLoginStartsRateLimited(t *testing.T) {
	e := newEnvWith(t, false, func(c *Config) { c.LoginRate, c.LoginBurst = 1e-6, 2 })
	start := func(remote, civil string, h http.Header) *httptest.ResponseRecorder {
		f := e.authQuery()
		f.Set("civil_number", civil)
		return e.serveFrom(remote, http.MethodPost, PathAuthorize, f, h)
	}
	for i, civil := range []string{"11111111", "22222222"} {
		if w := start("198.51.100.7:4000", civil, nil); w.Code != http.StatusOK {
			t.Fatalf("start %d: %d", i+1, w.Code)
		}
	}
	spoof := http.Header{"X-Forwarded-For": {"203.0.113.9"}}
	for i := range 3 {
		w := start("198.51.100.7:4001", "3333333"+string(rune('0'+i)), spoof)
		if w.Code != http.StatusTooManyRequests || w.Header().Get("Retry-After") == "" ||
			!strings.Contains(w.Body.String(), "Too many logins were started from your network") || strings.Contains(w.Body.String(), `name="key"`) {
			t.Fatalf("start past the burst: %d %q\n%s", w.Code, w.Header().Get("Retry-After"), w.Body.String())
		}
	}
	refused := e.audit.find("oidc.login", "refused")
	if len(refused) != 1 {
		t.Fatalf("%d refusals recorded for one run, want 1: %+v", len(refused), refused)
	}
	if d := refused[0].Details.(map[string]any); d["limit"] != limitLogin || d["address"] != "198.51.100.7" || refused[0].Object != e.client.ID {
		t.Fatalf("refusal record: %+v", refused[0])
	}
	if n := testutil.ToFloat64(e.p.m.limited.WithLabelValues(limitLogin)); n != 3 {
		t.Fatalf("thiqa_oidc_rate_limited_total{limit=login} = %v, want 3", n)
	}
	if w := start("192.0.2.1:5000", "44444444", nil); w.Code != http.StatusOK {
		t.Fatalf("another address: %d", w.Code)
	}
	// Showing the form is no start: not limited.
	if w := e.serveFrom("198.51.100.7:4002", http.MethodGet, PathAuthorize+"?"+e.authQuery().Encode(), nil, nil); w.Code != http.StatusOK {
		t.Fatalf("the login form: %d", w.Code)
	}
}

// TestLoginRateLimitUnrecorded: a refusal whose record cannot be written
// is answered as a failure.
func TestLoginRateLimitUnrecorded(t *testing.T) {
	e := newEnvWith(t, false, func(c *Config) { c.LoginRate, c.LoginBurst = 1e-6, 1 })
	e.startMobile(e.authQuery(), testCivil)
	e.audit.mu.Lock()
	e.audit.fail = true
	e.audit.mu.Unlock()
	f := e.authQuery()
	f.Set("civil_number", testCivil)
	resp, err := e.browser.PostForm(e.srv.URL+PathAuthorize, f)
	if err != nil {
		t.Fatal(err)
	}
	if body := readBody(t, resp); resp.StatusCode != http.StatusServiceUnavailable || !strings.Contains(body, descRefusalUnrecorded) {
		t.Fatalf("unrecorded refusal: %d %s", resp.StatusCode, body)
	}
}

// TestTokenRequestsRateLimited: the token endpoints had no per-address
// bound. Past Config.TokenBurst a request is refused before anything is
// parsed: 429, Retry-After and an OAuth error body; one record per run
// of refusals; the CSC token endpoint shares the address's bucket.
func TestTokenRequestsRateLimited(t *testing.T) {
	e := newEnvWith(t, false, func(c *Config) { c.TokenRate, c.TokenBurst = 1e-6, 2 })
	for i := range 2 {
		if w := e.serveFrom("198.51.100.8:4000", http.MethodPost, PathToken, e.tokenForm("no-such-code"), nil); w.Code != http.StatusBadRequest {
			t.Fatalf("token request %d: %d %s", i+1, w.Code, w.Body.String())
		}
	}
	before := len(e.audit.find("oidc.token", "refused"))
	for _, path := range []string{PathToken, PathCSCToken, PathToken} {
		w := e.serveFrom("198.51.100.8:4000", http.MethodPost, path, e.tokenForm("no-such-code"), nil)
		var body map[string]string
		_ = json.Unmarshal(w.Body.Bytes(), &body)
		if w.Code != http.StatusTooManyRequests || w.Header().Get("Retry-After") == "" || body["error"] != errTemporarilyUnavailable ||
			w.Header().Get("Cache-Control") != "no-store" {
			t.Fatalf("%s past the burst: %d %v %s", path, w.Code, w.Header(), w.Body.String())
		}
	}
	refused := e.audit.find("oidc.token", "refused")
	if len(refused) != before+1 || len(e.audit.find(ActionCSCToken, "refused")) != 0 {
		t.Fatalf("%d records for one run of refusals, want 1", len(refused)-before)
	}
	if d := refused[len(refused)-1].Details.(map[string]any); d["limit"] != limitToken || d["address"] != "198.51.100.8" {
		t.Fatalf("record: %+v", refused[len(refused)-1])
	}
	if n := testutil.ToFloat64(e.p.m.limited.WithLabelValues(limitToken)); n != 3 {
		t.Fatalf("thiqa_oidc_rate_limited_total{limit=token} = %v", n)
	}
	if w := e.serveFrom("192.0.2.2:4000", http.MethodPost, PathToken, e.tokenForm("no-such-code"), nil); w.Code != http.StatusBadRequest {
		t.Fatalf("another address: %d", w.Code)
	}
}

// TestRateLimitRunRecordedAfterAuditFailure: when the record of a run's
// first refusal could not be written (answered 503), the run's next
// refusals were streak 2, 3, ...: answered 429 and never recorded, for as
// long as the address kept knocking. The next refusal after the failure is
// recorded.
func TestRateLimitRunRecordedAfterAuditFailure(t *testing.T) {
	e := newEnvWith(t, false, func(c *Config) { c.TokenRate, c.TokenBurst = 1e-6, 1 })
	const remote = "198.51.100.9:4000"
	if w := e.serveFrom(remote, http.MethodPost, PathToken, e.tokenForm("no-such-code"), nil); w.Code != http.StatusBadRequest {
		t.Fatalf("first token request: %d", w.Code)
	}
	e.audit.mu.Lock()
	e.audit.fail = true
	e.audit.mu.Unlock()
	if w := e.serveFrom(remote, http.MethodPost, PathToken, e.tokenForm("no-such-code"), nil); w.Code != http.StatusServiceUnavailable {
		t.Fatalf("refusal without its record: %d", w.Code)
	}
	e.audit.mu.Lock()
	e.audit.fail = false
	e.audit.mu.Unlock()
	before := len(e.audit.find("oidc.token", "refused"))
	if w := e.serveFrom(remote, http.MethodPost, PathToken, e.tokenForm("no-such-code"), nil); w.Code != http.StatusTooManyRequests {
		t.Fatalf("refusal once the log works again: %d", w.Code)
	}
	if n := len(e.audit.find("oidc.token", "refused")) - before; n != 1 {
		t.Fatalf("%d records of the run's refusal after the failed one, want 1", n)
	}
}

// TestLoginRateLimitIPv6Prefix: keyed per IPv6 address, one host (which
// holds a /64) started logins without bound by changing its address for
// each, and every fresh address left a refusal record of its own. The
// addresses of one /64 share a bucket.
func TestLoginRateLimitIPv6Prefix(t *testing.T) {
	e := newEnvWith(t, false, func(c *Config) { c.LoginRate, c.LoginBurst = 1e-6, 2 })
	codes := []int{}
	for i := range 4 {
		f := e.authQuery()
		f.Set("civil_number", "5555555"+string(rune('0'+i)))
		w := e.serveFrom("[2001:db8:7:7::"+string(rune('a'+i))+"]:4000", http.MethodPost, PathAuthorize, f, nil)
		codes = append(codes, w.Code)
	}
	if codes[0] != http.StatusOK || codes[1] != http.StatusOK || codes[2] != http.StatusTooManyRequests || codes[3] != http.StatusTooManyRequests {
		t.Fatalf("starts from four addresses of one /64: %v", codes)
	}
	if refused := e.audit.find("oidc.login", "refused"); len(refused) != 1 || refused[0].Details.(map[string]any)["address"] != "2001:db8:7:7::/64" {
		t.Fatalf("refusal records: %+v", refused)
	}
}
