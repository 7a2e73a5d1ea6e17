package identity

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// FuzzTokenRequest feeds arbitrary token-endpoint bodies (client
// assertions, codes, verifiers): the answer is an OAuth error JSON, never a
// panic, and nothing is issued without a login.
func FuzzTokenRequest(f *testing.F) {
	e := newEnv(f, false)
	h := e.p.Handler()
	f.Fuzz(func(t *testing.T, body string) {
		r := httptest.NewRequest(http.MethodPost, PathToken, strings.NewReader(body))
		r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		if w.Code == http.StatusOK || !strings.Contains(w.Body.String(), `"error"`) {
			t.Fatalf("token endpoint answered %d %s", w.Code, w.Body)
		}
	})
}

// FuzzAuthorize feeds arbitrary authorization requests: the answer is the
// login page, an error page, or a redirect to the registered redirect URI
// only.
func FuzzAuthorize(f *testing.F) {
	e := newEnv(f, false)
	h := e.p.Handler()
	f.Fuzz(func(t *testing.T, query string) {
		r := httptest.NewRequest(http.MethodGet, "/oidc/authorize", nil)
		r.URL.RawQuery = query
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		if loc := w.Header().Get("Location"); loc != "" && !strings.HasPrefix(loc, testRedir+"?") {
			t.Fatalf("redirected to %q", loc)
		}
	})
}

// FuzzUserinfo feeds arbitrary bearer tokens to the userinfo endpoint.
func FuzzUserinfo(f *testing.F) {
	e := newEnv(f, false)
	h := e.p.Handler()
	f.Fuzz(func(t *testing.T, token string) {
		r := httptest.NewRequest(http.MethodGet, PathUserinfo, nil)
		r.Header.Set("Authorization", "Bearer "+token)
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		if w.Code == http.StatusOK {
			t.Fatalf("userinfo accepted %q", token)
		}
	})
}
