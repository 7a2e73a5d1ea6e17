package portal

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"

	"github.com/thiqa/thiqa/internal/josesigner"
)

const testIssuer = "https://id.thiqa.example"

// oidcFixture is a portal whose API plays the provider's token endpoint
// and key set: the token endpoint answers an ID token for sub.
func oidcFixture(t *testing.T, sub *string) *fixture {
	t.Helper()
	f := newFixture(t)
	provKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	clientKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	js, err := josesigner.New(clientKey, "portal-key")
	if err != nil {
		t.Fatal(err)
	}
	f.p.o.OIDC = &OIDCClient{Issuer: testIssuer, ClientID: "thiqa-portal-1", RedirectURI: "https://portal.example/my/callback", Key: js}
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: jose.JSONWebKey{Key: provKey, KeyID: "p1"}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	var nonce string
	f.answer = func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		switch r.URL.Path {
		case pathJWKS:
			_ = json.NewEncoder(w).Encode(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: &provKey.PublicKey, KeyID: "p1", Algorithm: "ES256", Use: "sig"}}})
		case pathToken:
			idt, err := jwt.Signed(signer).Claims(map[string]any{
				"iss": testIssuer, "sub": *sub, "aud": "thiqa-portal-1", "azp": "thiqa-portal-1", "nonce": nonce,
				"iat": f.clock.Unix(), "exp": f.clock.Add(5 * time.Minute).Unix(), "name": "Aisha",
			}).Serialize()
			if err != nil {
				t.Error(err)
			}
			_ = json.NewEncoder(w).Encode(map[string]string{"access_token": "at", "token_type": "Bearer", "id_token": idt})
		default:
			http.NotFound(w, r)
		}
	}
	f.nonce = func(n string) { nonce = n }
	return f
}

// startLogin follows /my/login and returns the state it sent.
func (c *client) startLogin(t *testing.T) string {
	t.Helper()
	w := c.do("GET", "/my/login", nil)
	if w.Code != http.StatusSeeOther {
		t.Fatalf("/my/login: %d", w.Code)
	}
	u, err := url.Parse(w.Header().Get("Location"))
	if err != nil {
		t.Fatal(err)
	}
	c.f.nonce(u.Query().Get("nonce"))
	return u.Query().Get("state")
}

// TestCallbackChecksIss: the provider names itself in every authorization
// response (RFC 9207, authorization_response_iss_parameter_supported); an
// answer with the right state but another issuer, or none, is refused
// before its code goes anywhere, as a mix-up.
func TestCallbackChecksIss(t *testing.T) {
	sub := "12345678"
	for _, iss := range []string{"", "https://evil.example", testIssuer + "/"} {
		f := oidcFixture(t, &sub)
		c := f.client()
		state := c.startLogin(t)
		q := url.Values{"code": {"c1"}, "state": {state}}
		if iss != "" {
			q.Set("iss", iss)
		}
		w := c.do("GET", "/my/callback?"+q.Encode(), nil)
		if w.Code != http.StatusForbidden {
			t.Fatalf("iss %q: %d", iss, w.Code)
		}
		for _, call := range f.calls {
			if strings.Contains(call, pathToken) {
				t.Fatalf("iss %q: the code went to the token endpoint", iss)
			}
		}
		if a := f.audit.actions(); len(a) != 1 || a[0] != "web.login:refused:anonymous" {
			t.Fatalf("iss %q: audit %v", iss, a)
		}
	}
	f := oidcFixture(t, &sub)
	c := f.client()
	state := c.startLogin(t)
	w := c.do("GET", "/my/callback?"+url.Values{"code": {"c1"}, "state": {state}, "iss": {testIssuer}}.Encode(), nil)
	if w.Code != http.StatusSeeOther || w.Header().Get("Location") != "/my/" {
		t.Fatalf("the provider's answer: %d %s", w.Code, w.Body)
	}
}

// TestCallbackWantsACivilNumber: the session's citizen is the ID token's
// subject, so it must be a civil number; a pairwise subject (base64url,
// digits among its letters) is refused, not taken for one.
func TestCallbackWantsACivilNumber(t *testing.T) {
	for _, sub := range []string{"Xk3vQ9_pairwise-sub-7Hq2", "12ab34"} {
		f := oidcFixture(t, &sub)
		c := f.client()
		state := c.startLogin(t)
		w := c.do("GET", "/my/callback?"+url.Values{"code": {"c1"}, "state": {state}, "iss": {testIssuer}}.Encode(), nil)
		if w.Code != http.StatusForbidden {
			t.Fatalf("sub %q: %d", sub, w.Code)
		}
		if a := f.audit.actions(); len(a) != 1 || a[0] != "web.login:refused:anonymous" {
			t.Fatalf("sub %q: audit %v", sub, a)
		}
	}
}
