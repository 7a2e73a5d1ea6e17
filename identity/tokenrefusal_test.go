package identity

import (
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4/jwt"

	"github.com/thiqa/thiqa/internal/ratelimit"
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

// TestTokenVerifiedCertificateRefusalsAlwaysRecorded: a TLS client
// certificate whose chain the TLS layer verified is a real credential:
// presented at the token endpoint for a tls_client_auth client it is not
// registered for, each refusal is recorded and names the certificate,
// also past the address's budget spent on unknown clients, which a
// request without a certificate stays within.
func TestTokenVerifiedCertificateRefusalsAlwaysRecorded(t *testing.T) {
	e := newEnv(t, false)
	e.store.clients["tls-portal"] = &Client{ID: "tls-portal", Name: "TLS portal", RedirectURIs: []string{testRedir},
		AuthMethod: AuthTLSClient, TLSSubject: "CN=portal.example.om"}
	other := &x509.Certificate{Subject: pkix.Name{CommonName: "someone.example.om"}}
	post := func(cert *x509.Certificate) int {
		t.Helper()
		form := url.Values{"grant_type": {"authorization_code"}, "code": {"x"}, "client_id": {"tls-portal"}}
		req := httptest.NewRequest(http.MethodPost, e.srv.URL+PathToken, strings.NewReader(form.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.RemoteAddr = "198.51.100.29:4000"
		if cert != nil {
			req.TLS = &tls.ConnectionState{PeerCertificates: []*x509.Certificate{cert}, VerifiedChains: [][]*x509.Certificate{{cert}}}
		}
		rec := httptest.NewRecorder()
		e.p.Handler().ServeHTTP(rec, req)
		return rec.Code
	}
	for range 12 { // the address's budget spent
		post(nil)
	}
	before := len(e.audit.find("oidc.token", "refused"))
	for i := range 8 {
		if code := post(other); code != http.StatusUnauthorized {
			t.Fatalf("request %d: %d, want 401", i+1, code)
		}
	}
	recs := e.audit.find("oidc.token", "refused")
	if n := len(recs) - before; n != 8 {
		t.Fatalf("%d records of 8 refusals of a verified certificate of another subject past the address's budget, want 8", n)
	}
	if d, _ := recs[len(recs)-1].Details.(map[string]any); d["certificate"] != other.Subject.String() {
		t.Fatalf("the record does not name the certificate: %+v", recs[len(recs)-1])
	}
	post(nil)
	if n := len(e.audit.find("oidc.token", "refused")) - before; n != 8 {
		t.Fatalf("a request without a certificate past the budget was recorded (%d records)", n)
	}
}

// TestTokenRefusalRecordedAfterAuditFailure: when the record of the first
// refused token request past an address's budget could not be written
// (answered 503), the run's next refusal is recorded in its place
// (ratelimit.Refusal.Undo), not left out with the rest of the run.
func TestTokenRefusalRecordedAfterAuditFailure(t *testing.T) {
	e := newEnv(t, false)
	const remote = "198.51.100.9:4000"
	form := url.Values{"grant_type": {"authorization_code"}, "client_id": {"no-such-client"}}
	for i := range ratelimit.AnonymousBurst {
		if w := e.serveFrom(remote, http.MethodPost, PathToken, form, nil); w.Code != http.StatusUnauthorized {
			t.Fatalf("refusal %d: %d", i+1, w.Code)
		}
	}
	e.audit.mu.Lock()
	e.audit.fail = true
	e.audit.mu.Unlock()
	if w := e.serveFrom(remote, http.MethodPost, PathToken, form, nil); w.Code != http.StatusServiceUnavailable {
		t.Fatalf("the run's first refusal, unrecorded: %d, want 503", w.Code)
	}
	e.audit.mu.Lock()
	e.audit.fail = false
	e.audit.mu.Unlock()
	before := len(e.audit.find("oidc.token", "refused"))
	for i := range 3 {
		if w := e.serveFrom(remote, http.MethodPost, PathToken, form, nil); w.Code != http.StatusUnauthorized {
			t.Fatalf("refusal %d after the failure: %d", i+1, w.Code)
		}
	}
	if n := len(e.audit.find("oidc.token", "refused")) - before; n != 1 {
		t.Fatalf("%d records of the run's refusals after the failed one, want 1", n)
	}
}
