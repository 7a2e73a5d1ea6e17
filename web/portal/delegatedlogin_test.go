package portal

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"

	"github.com/thiqa/thiqa/internal/auth"
	"github.com/thiqa/thiqa/policies"
)

// delegatedAuth is a real Authenticator trusting one delegated issuer (the
// CSC API's authorization server), and a way to mint its access tokens.
func delegatedAuth(t *testing.T, now func() time.Time) (*auth.Authenticator, func(scope string, exp time.Time) string) {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	const iss, aud = "https://id.test.example", "https://sign.test.example/csc/v2"
	a, err := auth.New(auth.Config{}, auth.Options{Now: now, Delegated: []auth.DelegatedIssuer{{
		Issuer: iss, Audience: aud, Keys: []jose.JSONWebKey{{Key: &k.PublicKey, KeyID: "k1", Algorithm: string(jose.ES256), Use: "sig"}},
		Scopes: []string{auth.ScopeService, auth.ScopeCredential}, Role: policies.RoleCitizen, Actions: []policies.Action{policies.ActionSign},
		Revoked: func(context.Context, string) (bool, error) { return false, nil },
	}}})
	if err != nil {
		t.Fatal(err)
	}
	s, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: k}, (&jose.SignerOptions{}).WithType("at+jwt").WithHeader("kid", "k1"))
	if err != nil {
		t.Fatal(err)
	}
	mint := func(scope string, exp time.Time) string {
		n := now()
		tok, err := jwt.Signed(s).Claims(map[string]any{"iss": iss, "aud": aud, "sub": "12345678", "client_id": "csc-app",
			"iat": n.Add(-2 * time.Hour).Unix(), "nbf": n.Add(-2 * time.Hour).Unix(), "exp": exp.Unix(), "jti": "grant-1", "scope": scope}).Serialize()
		if err != nil {
			t.Fatal(err)
		}
		return tok
	}
	return a, mint
}

// TestDelegatedTokenOpensNoPortalSession: an access token the citizen
// delegated to an app for the CSC API (scope service) verifies, and names
// a citizen, but it was given for that API alone: /my/approve/login
// refuses it (403, recorded), and no session that lists the citizen's
// credentials is opened.
func TestDelegatedTokenOpensNoPortalSession(t *testing.T) {
	var mint func(string, time.Time) string
	f := newFixtureWith(t, func(o *Options) {
		var a *auth.Authenticator
		a, mint = delegatedAuth(t, o.Now)
		o.Authenticate = a.Authenticate
	})
	c := f.client()
	token := csrf(t, c.do("GET", "/my/approve?lang=en", nil))
	w := c.do("POST", "/my/approve/login", url.Values{"csrf": {token}, "token": {mint(auth.ScopeService, f.clock.Add(time.Hour))}})
	if w.Code != http.StatusForbidden || !strings.Contains(w.Body.String(), "access token given to an app") {
		t.Fatalf("a CSC service token at /my/approve/login: %d, want 403 saying why:\n%s", w.Code, w.Body.String())
	}
	if got := f.audit.actions(); len(got) != 1 || got[0] != "web.login:refused:12345678" {
		t.Fatalf("records %v, want the refused sign-in naming the citizen", got)
	}
	if w := c.do("GET", "/my/approve?lang=en", nil); !strings.Contains(w.Body.String(), `name="token"`) {
		t.Fatalf("after the refusal /my/approve is not the sign-in form: a session was opened:\n%s", w.Body.String())
	}
}

// TestIdentifiedLoginRefusalsAlwaysRecorded: an expired access token
// verified, and names whoever presented it: each refused sign-in with it
// is recorded, also past the address's budget of anonymous refusals that
// forged tokens spent.
func TestIdentifiedLoginRefusalsAlwaysRecorded(t *testing.T) {
	var mint func(string, time.Time) string
	f := newFixtureWith(t, func(o *Options) {
		var a *auth.Authenticator
		a, mint = delegatedAuth(t, o.Now)
		o.Authenticate = a.Authenticate
	})
	c := f.client()
	token := csrf(t, c.do("GET", "/my/approve?lang=en", nil))
	for range 12 {
		c.do("POST", "/my/approve/login", url.Values{"csrf": {token}, "token": {"forged"}})
	}
	before := len(f.audit.actions())
	expired := mint(auth.ScopeService, f.clock.Add(-time.Hour))
	for i := range 15 {
		if w := c.do("POST", "/my/approve/login", url.Values{"csrf": {token}, "token": {expired}}); w.Code != http.StatusUnauthorized {
			t.Fatalf("request %d: %d, want 401", i+1, w.Code)
		}
	}
	if n := len(f.audit.actions()) - before; n != 15 {
		t.Fatalf("%d records of 15 sign-ins with an expired token past the address's budget, want 15", n)
	}
}
