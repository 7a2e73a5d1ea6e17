package auth

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"

	"github.com/thiqa/thiqa/internal/josesigner"
)

const (
	testIssuer   = "https://idp.test.example"
	testAudience = "thiqa-api"
)

// fakeClock is a settable clock for Options.Now.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *fakeClock { return &fakeClock{t: time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC)} }

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

func quietLogger() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

func newECKey(t testing.TB, c elliptic.Curve) *ecdsa.PrivateKey {
	t.Helper()
	k, err := ecdsa.GenerateKey(c, rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func newRSAKey(t testing.TB) *rsa.PrivateKey {
	t.Helper()
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func newSigner(t testing.TB, k crypto.Signer, opts ...josesigner.Option) *josesigner.Signer {
	t.Helper()
	s, err := josesigner.New(k, "", opts...)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// fixture is an Authenticator trusting one issuer whose JWKS file holds the
// public keys of signers.
type fixture struct {
	auth   *Authenticator
	clock  *fakeClock
	jwks   string
	signer *josesigner.Signer
}

func newFixture(t testing.TB, mutate func(*IssuerConfig), signers ...*josesigner.Signer) *fixture {
	t.Helper()
	if len(signers) == 0 {
		signers = []*josesigner.Signer{newSigner(t, newECKey(t, elliptic.P256()))}
	}
	path := filepath.Join(t.TempDir(), "issuer.jwks.json")
	var keys []jose.JSONWebKey
	for _, s := range signers {
		keys = append(keys, *s.Public())
	}
	if err := WriteJWKS(path, keys...); err != nil {
		t.Fatal(err)
	}
	ic := IssuerConfig{Issuer: testIssuer, Audience: testAudience, JWKSFile: path}
	if mutate != nil {
		mutate(&ic)
	}
	clock := newClock()
	a, err := New(Config{Issuers: []IssuerConfig{ic}}, Options{Logger: quietLogger(), Now: clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	return &fixture{auth: a, clock: clock, jwks: path, signer: signers[0]}
}

// claims returns valid claims for the fixture's issuer at the clock's time.
func (f *fixture) claims(sub string, roles ...string) map[string]any {
	now := f.clock.Now()
	return map[string]any{
		"iss":   testIssuer,
		"aud":   []string{testAudience},
		"sub":   sub,
		"iat":   now.Unix(),
		"nbf":   now.Unix(),
		"exp":   now.Add(10 * time.Minute).Unix(),
		"jti":   "test",
		"roles": roles,
	}
}

// signJWT signs claims as a compact JWS with any go-jose signing key.
func signJWT(t testing.TB, key jose.SigningKey, claims any, extra map[jose.HeaderKey]any) string {
	t.Helper()
	opts := (&jose.SignerOptions{}).WithType("JWT")
	for k, v := range extra {
		opts = opts.WithHeader(k, v)
	}
	s, err := jose.NewSigner(key, opts)
	if err != nil {
		t.Fatal(err)
	}
	tok, err := jwt.Signed(s).Claims(claims).Serialize()
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

func (f *fixture) sign(t testing.TB, claims any) string {
	t.Helper()
	return signJWT(t, jose.SigningKey{Algorithm: f.signer.Algorithm(), Key: f.signer}, claims, nil)
}

func bearerRequest(token string) *http.Request {
	r := httptest.NewRequest(http.MethodGet, "/api/v1/test", nil)
	if token != "" {
		r.Header.Set("Authorization", "Bearer "+token)
	}
	return r
}

// unsignedJWT builds header.payload. with the given header and claims.
func unsignedJWT(t testing.TB, header, claims any) string {
	t.Helper()
	enc := func(v any) string {
		b, err := json.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		return base64.RawURLEncoding.EncodeToString(b)
	}
	return enc(header) + "." + enc(claims) + "."
}

func rolesOf(p *Principal) string {
	var s []string
	for _, r := range p.Roles {
		s = append(s, string(r))
	}
	return strings.Join(s, ",")
}
