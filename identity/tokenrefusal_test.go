package identity

import (
	"net/http"
	"net/url"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4/jwt"
)

// TestTokenRefusalsBounded: anyone may post to the token endpoints, up to
// the token rate limit (100 a second from one address), and each refusal
// of a client that did not authenticate (a malformed form, no or a forged
// client authentication) was recorded. One address now gets 10 records at
// once, then only the first of each run, for both endpoints together;
// each is still answered as before, and another address has its own
// budget. An assertion that verified but is refused (expired) names the
// client and is always recorded.
func TestTokenRefusalsBounded(t *testing.T) {
	e := newEnv(t, false)
	records := func() int {
		return len(e.audit.find("oidc.token", "refused")) + len(e.audit.find(ActionCSCToken, "refused"))
	}
	post := func(remote, path string, form url.Values) (int, string) {
		t.Helper()
		w := e.serveFrom(remote, http.MethodPost, path, form, nil)
		return w.Code, w.Body.String()
	}
	before := records()
	for i := range 40 {
		path := PathToken
		if i%2 == 1 {
			path = PathCSCToken
		}
		form, want := url.Values{"grant_type": {"authorization_code"}, "client_id": {"no-such-client"}}, http.StatusUnauthorized
		if i%4 >= 2 {
			form, want = url.Values{"code": {"a", "b"}}, http.StatusBadRequest
		}
		if code, body := post("198.51.100.9:4000", path, form); code != want {
			t.Fatalf("request %d at %s: %d %s, want %d", i+1, path, code, body, want)
		}
	}
	if n := records() - before; n != 11 {
		t.Fatalf("%d records for 40 refused token requests from one address, want 11 (10, then the first of the run)", n)
	}
	post("192.0.2.3:4000", PathToken, url.Values{"client_id": {"no-such-client"}})
	if n := records() - before; n != 12 {
		t.Fatalf("another address: %d records, want 12", n)
	}
	expired := e.assertion(e.client.ID, e.ckey, func(c *jwt.Claims) { c.Expiry = jwt.NewNumericDate(time.Now().Add(-time.Hour)) })
	for i := range 5 {
		form := url.Values{"grant_type": {"authorization_code"}, "code": {"x"}, "client_assertion_type": {clientAssertionType}, "client_assertion": {expired}}
		if code, body := post("198.51.100.9:4000", PathToken, form); code != http.StatusUnauthorized {
			t.Fatalf("expired assertion %d: %d %s, want 401", i+1, code, body)
		}
	}
	if n := records() - before; n != 17 {
		t.Fatalf("%d records after 5 refused assertions that verified, want 17: each is recorded", n)
	}
}
