package identity

import (
	"encoding/json"
	"net/http"
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
