package identity

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
)

// TestAuthorizeRefusalsBounded: the authorization endpoints are public and
// each refused request (an unknown client, a malformed one) was recorded,
// so anyone could write an audit record per request, as fast as they could
// send them. One address now gets 10 records at once, then only the first
// of each run, for both endpoints together; every request is still
// answered with its error, and another address has its own budget.
func TestAuthorizeRefusalsBounded(t *testing.T) {
	e := newEnv(t, false)
	records := func() int {
		return len(e.audit.find("oidc.authorize", "refused")) + len(e.audit.find(ActionCSCAuthorize, "refused"))
	}
	ask := func(remote, path string) int {
		t.Helper()
		q := url.Values{"client_id": {"no-such-client"}, "response_type": {"code"}}
		w := e.serveFrom(remote, http.MethodGet, path+"?"+q.Encode(), nil, nil)
		if !strings.Contains(w.Body.String(), "client") {
			t.Fatalf("%s: %d %s, want the unknown client's error page", path, w.Code, w.Body.String())
		}
		return w.Code
	}
	before := records()
	for i := range 40 {
		path := PathAuthorize
		if i%2 == 1 {
			path = PathCSCAuthorize
		}
		if code := ask("198.51.100.9:4000", path); code != http.StatusBadRequest {
			t.Fatalf("request %d: %d, want 400", i+1, code)
		}
	}
	if n := records() - before; n != 11 {
		t.Fatalf("%d records for 40 refused authorization requests from one address, want 11 (10, then the first of the run)", n)
	}
	ask("192.0.2.3:4000", PathAuthorize)
	if n := records() - before; n != 12 {
		t.Fatalf("another address: %d records, want 12", n)
	}
}
