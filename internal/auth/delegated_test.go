package auth

import (
	"context"
	"crypto/elliptic"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"

	"github.com/thiqa/thiqa/internal/audit"
	"github.com/thiqa/thiqa/internal/josesigner"
	"github.com/thiqa/thiqa/policies"
)

const (
	delegatedIssuerURL = "https://id.test.example"
	delegatedAudience  = "https://sign.test.example/csc/v2"
)

// delegatedFixture trusts a development-style issuer (f) and a delegated
// issuer whose key the test holds.
type delegatedFixture struct {
	*fixture
	a       *Authenticator
	idp     *josesigner.Signer
	mu      sync.Mutex
	revoked map[string]bool
	down    bool
	audit   *recordingAudit
}

type recordingAudit struct {
	mu      sync.Mutex
	entries []audit.Entry
}

func (r *recordingAudit) Append(_ context.Context, e audit.Entry) (audit.Record, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.entries = append(r.entries, e)
	return audit.Record{}, nil
}

func newDelegatedFixture(t *testing.T) *delegatedFixture {
	t.Helper()
	f := &delegatedFixture{fixture: newFixture(t, nil), idp: newSigner(t, newECKey(t, elliptic.P256())), revoked: map[string]bool{}, audit: &recordingAudit{}}
	d := DelegatedIssuer{
		Issuer: delegatedIssuerURL, Audience: delegatedAudience, Keys: []jose.JSONWebKey{*f.idp.Public()},
		Scopes: []string{"service", "credential"}, Role: policies.RoleCitizen, Actions: []policies.Action{policies.ActionSign},
		Revoked: func(_ context.Context, id string) (bool, error) {
			f.mu.Lock()
			defer f.mu.Unlock()
			if f.down {
				return false, errors.New("store down")
			}
			return f.revoked[id], nil
		},
	}
	a, err := New(Config{Issuers: []IssuerConfig{{Issuer: testIssuer, Audience: testAudience, JWKSFile: f.jwks}}},
		Options{Logger: quietLogger(), Now: f.clock.Now, Audit: f.audit, Delegated: []DelegatedIssuer{d}})
	if err != nil {
		t.Fatal(err)
	}
	f.a = a
	return f
}

// access returns valid claims of a delegated access token.
func (f *delegatedFixture) access(scope string) map[string]any {
	now := f.clock.Now()
	return map[string]any{
		"iss": delegatedIssuerURL, "aud": delegatedAudience, "sub": "12345678", "client_id": "oidc-app",
		"iat": now.Unix(), "nbf": now.Unix(), "exp": now.Add(5 * time.Minute).Unix(), "jti": "grant-1", "scope": scope,
	}
}

func (f *delegatedFixture) mint(t *testing.T, claims map[string]any, typ string) string {
	t.Helper()
	opts := (&jose.SignerOptions{}).WithType(jose.ContentType(typ))
	s, err := jose.NewSigner(jose.SigningKey{Algorithm: f.idp.Algorithm(), Key: f.idp}, opts)
	if err != nil {
		t.Fatal(err)
	}
	tok, err := jwt.Signed(s).Claims(claims).Serialize()
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

func TestDelegatedTokens(t *testing.T) {
	f := newDelegatedFixture(t)

	// A credential token: the citizen's principal with its grant.
	c := f.access("credential")
	c["credentialID"], c["numSignatures"], c["hashAlgorithmOID"], c["hashes"], c["sad"] = "cred-1", 1, "2.16.840.1.101.3.4.2.1", []string{"aGFzaA"}, "sad-1"
	c["roles"] = []string{"operator"} // ignored: the delegated issuer grants its role
	tok := f.mint(t, c, "at+jwt")
	for range 2 { // verified, then from the token cache
		p, err := f.a.Authenticate(bearerRequest(tok))
		if err != nil {
			t.Fatal(err)
		}
		if p.CivilNumber != "12345678" || rolesOf(p) != "citizen" || p.Grant == nil || !p.Grant.HasScope("credential") ||
			p.Grant.CredentialID != "cred-1" || p.Grant.SAD != "sad-1" || p.Grant.TokenID != "grant-1" || len(p.Grant.Hashes) != 1 ||
			p.Caller().Client != "oidc-app" || p.Caller().Scope != "credential" {
			t.Fatalf("principal %+v grant %+v", p, p.Grant)
		}
	}

	// Refused: each flaw alone.
	for name, mod := range map[string]func(map[string]any) string{
		"another audience": func(m map[string]any) string { m["aud"] = testAudience; return "at+jwt" },
		"no scope":         func(m map[string]any) string { delete(m, "scope"); return "at+jwt" },
		"unknown scope":    func(m map[string]any) string { m["scope"] = "service admin"; return "at+jwt" },
		"openid scope":     func(m map[string]any) string { m["scope"] = "openid"; return "at+jwt" },
		"no client":        func(m map[string]any) string { delete(m, "client_id"); return "at+jwt" },
		"ID token type":    func(m map[string]any) string { return "JWT" },
		"expired": func(m map[string]any) string {
			m["exp"] = f.clock.Now().Add(-time.Hour).Unix()
			return "at+jwt"
		},
	} {
		m := f.access("service")
		typ := mod(m)
		if _, err := f.a.Authenticate(bearerRequest(f.mint(t, m, typ))); !errors.Is(err, ErrInvalidCredentials) {
			t.Errorf("%s: %v, want invalid credentials", name, err)
		}
	}
	// A token of the delegated issuer's key claiming the other issuer is
	// not trusted either (keys are per issuer).
	m := f.access("service")
	m["iss"], m["aud"], m["roles"] = testIssuer, testAudience, []string{"operator"}
	if _, err := f.a.Authenticate(bearerRequest(f.mint(t, m, "JWT"))); !errors.Is(err, ErrInvalidCredentials) {
		t.Errorf("the delegated key signing for the other issuer: %v", err)
	}

	// Only the delegated actions: sign passes, whoami and approve are 403.
	svc := f.mint(t, f.access("service"), "at+jwt")
	ok := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusNoContent) })
	for action, want := range map[policies.Action]int{policies.ActionSign: 204, policies.ActionWhoAmI: 403, policies.ActionApproveLogin: 403, policies.ActionRevokeCertificate: 403} {
		rec := httptest.NewRecorder()
		f.a.Require(action)(ok).ServeHTTP(rec, bearerRequest(svc))
		if rec.Code != want {
			t.Errorf("%s with a service token: %d %s, want %d", action, rec.Code, rec.Body, want)
		}
		if want == 403 && !strings.Contains(rec.Body.String(), "delegated access token") {
			t.Errorf("%s: the refusal does not say why: %s", action, rec.Body)
		}
	}
	f.audit.mu.Lock()
	n := len(f.audit.entries)
	last := f.audit.entries[n-1]
	f.audit.mu.Unlock()
	if n != 3 || last.Outcome != audit.OutcomeRefused || last.Actor != "12345678" {
		t.Fatalf("%d refusals audited, last %+v", n, last)
	}
	// The development issuer's citizen still reaches everything citizens may.
	if p, err := f.a.Authenticate(bearerRequest(f.sign(t, f.claims("12345678", "citizen")))); err != nil || p.Grant != nil || !p.delegationAllows(policies.ActionWhoAmI) {
		t.Fatalf("an ordinary token: %+v %v", p, err)
	}

	// Revocation of the grant stops the token at once, cached or not; a
	// store that cannot answer makes it unavailable, not invalid.
	f.mu.Lock()
	f.down = true
	f.mu.Unlock()
	if _, err := f.a.Authenticate(bearerRequest(svc)); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("grant store down: %v", err)
	}
	f.mu.Lock()
	f.down, f.revoked["grant-1"] = false, true
	f.mu.Unlock()
	if _, err := f.a.Authenticate(bearerRequest(tok)); !errors.Is(err, ErrInvalidCredentials) || !strings.Contains(err.Error(), "revoked") {
		t.Fatalf("revoked grant: %v", err)
	}
}

func TestDelegatedIssuerValidation(t *testing.T) {
	key := *newSigner(t, newECKey(t, elliptic.P256())).Public()
	good := DelegatedIssuer{Issuer: delegatedIssuerURL, Audience: delegatedAudience, Keys: []jose.JSONWebKey{key},
		Scopes: []string{"service"}, Role: policies.RoleCitizen, Actions: []policies.Action{policies.ActionSign}}
	noAlg := key
	noAlg.Algorithm = ""
	for name, mod := range map[string]func(*DelegatedIssuer){
		"no audience":      func(d *DelegatedIssuer) { d.Audience = "" },
		"no keys":          func(d *DelegatedIssuer) { d.Keys = nil },
		"key without alg":  func(d *DelegatedIssuer) { d.Keys = []jose.JSONWebKey{noAlg} },
		"no scopes":        func(d *DelegatedIssuer) { d.Scopes = nil },
		"no actions":       func(d *DelegatedIssuer) { d.Actions = nil },
		"unknown role":     func(d *DelegatedIssuer) { d.Role = "root" },
		"configured twice": func(d *DelegatedIssuer) { d.Issuer = testIssuer },
	} {
		d := good
		mod(&d)
		cfg := Config{Issuers: []IssuerConfig{{Issuer: testIssuer, Audience: testAudience, JWKSFile: newFixture(t, nil).jwks}}}
		if _, err := New(cfg, Options{Logger: quietLogger(), Delegated: []DelegatedIssuer{d}}); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	if _, err := New(Config{}, Options{Logger: quietLogger(), Delegated: []DelegatedIssuer{good}}); err != nil {
		t.Fatalf("a valid delegated issuer: %v", err)
	}
}

// Recheck of a delegated token's principal: it holds until its grant is
// revoked or it expires; a grant store that cannot answer is unavailable.
func TestRecheckDelegatedToken(t *testing.T) {
	f := newDelegatedFixture(t)
	p, err := f.a.Authenticate(bearerRequest(f.mint(t, f.access("service"), "at+jwt")))
	if err != nil {
		t.Fatal(err)
	}
	if err := f.a.Recheck(t.Context(), p); err != nil {
		t.Fatalf("a live grant: %v", err)
	}
	f.mu.Lock()
	f.down = true
	f.mu.Unlock()
	if err := f.a.Recheck(t.Context(), p); !errors.Is(err, ErrUnavailable) || errors.Is(err, ErrInvalidCredentials) {
		t.Fatalf("grant store down: %v", err)
	}
	f.mu.Lock()
	f.down, f.revoked["grant-1"] = false, true
	f.mu.Unlock()
	if err := f.a.Recheck(t.Context(), p); !errors.Is(err, ErrInvalidCredentials) {
		t.Fatalf("revoked grant: %v", err)
	}
	f.mu.Lock()
	f.revoked["grant-1"] = false
	f.mu.Unlock()
	f.clock.Advance(6 * time.Minute)
	if err := f.a.Recheck(t.Context(), p); !errors.Is(err, ErrTokenExpired) {
		t.Fatalf("expired token: %v", err)
	}
}
