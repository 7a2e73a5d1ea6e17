package auth

import (
	"context"
	"crypto/elliptic"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

// TestTokenCacheSkipsOnlyTheSignature checks that a token presented again is
// accepted from the cache, and that everything but the signature is still
// checked on every request.
func TestTokenCacheSkipsOnlyTheSignature(t *testing.T) {
	f := newFixture(t, nil)
	reg := prometheus.NewRegistry()
	m, err := newMetrics(reg)
	if err != nil {
		t.Fatal(err)
	}
	f.auth.metrics = m
	tok := f.sign(t, f.claims("NTROM-1234567", "agency"))
	for i := range 3 {
		p, err := f.auth.Authenticate(bearerRequest(tok))
		if err != nil {
			t.Fatalf("request %d: %v", i, err)
		}
		if p.OrganizationIdentifier != "NTROM-1234567" {
			t.Fatalf("request %d: principal %+v", i, p)
		}
	}
	if n := f.auth.tokens.len(); n != 1 {
		t.Fatalf("cache holds %d tokens, want 1", n)
	}
	if hits := testutil.ToFloat64(m.tokenCacheHits); hits != 2 {
		t.Fatalf("cache hits %v, want 2", hits)
	}

	// The same claims with a broken signature are a different token.
	parts := strings.Split(tok, ".")
	sig := []byte(parts[2])
	sig[len(sig)/2] ^= 'A' ^ 'B'
	if sig[len(sig)/2] == parts[2][len(sig)/2] {
		t.Fatal("signature not changed")
	}
	forged := parts[0] + "." + parts[1] + "." + string(sig)
	if _, err := f.auth.Authenticate(bearerRequest(forged)); !errors.Is(err, ErrInvalidCredentials) {
		t.Fatalf("forged signature of a cached token: %v", err)
	}

	// Expiry is checked on every hit: the token expires after 10 minutes.
	f.clock.Advance(12 * time.Minute) // past exp and the 60 s leeway
	if _, err := f.auth.Authenticate(bearerRequest(tok)); !errors.Is(err, ErrInvalidCredentials) || !strings.Contains(err.Error(), "expired") {
		t.Fatalf("expired cached token: %v", err)
	}
}

// TestTokenCacheNotBefore checks that a cached token is refused
// when its claims stop fitting, although its signature verified.
func TestTokenCacheNotBefore(t *testing.T) {
	f := newFixture(t, nil)
	c := f.claims("x", "operator")
	c["nbf"] = f.clock.Now().Add(5 * time.Minute).Unix()
	c["exp"] = f.clock.Now().Add(time.Hour).Unix()
	tok := f.sign(t, c)
	if _, err := f.auth.Authenticate(bearerRequest(tok)); err == nil {
		t.Fatal("token accepted before nbf")
	}
	if n := f.auth.tokens.len(); n != 0 {
		t.Fatalf("a refused token was cached (%d entries)", n)
	}
	f.clock.Advance(6 * time.Minute)
	if _, err := f.auth.Authenticate(bearerRequest(tok)); err != nil {
		t.Fatalf("after nbf: %v", err)
	}
	// Cached for at most maxTokenCacheAge, then verified again.
	f.clock.Advance(maxTokenCacheAge)
	hit, _ := f.auth.tokens.get(tok, f.clock.Now())
	if hit != nil {
		t.Fatal("entry used beyond maxTokenCacheAge")
	}
	if _, err := f.auth.Authenticate(bearerRequest(tok)); err != nil {
		t.Fatalf("re-verified: %v", err)
	}
}

// TestTokenCacheWithdrawnKey checks that withdrawing the issuer's key stops
// its cached tokens at once.
func TestTokenCacheWithdrawnKey(t *testing.T) {
	k1 := newSigner(t, newECKey(t, elliptic.P256()))
	k2 := newSigner(t, newECKey(t, elliptic.P256()))
	f := newFixture(t, nil, k1, k2)
	f.signer = k2
	tok := f.sign(t, f.claims("x", "operator"))
	for range 2 {
		if _, err := f.auth.Authenticate(bearerRequest(tok)); err != nil {
			t.Fatal(err)
		}
	}
	if err := WriteJWKS(f.jwks, *k1.Public()); err != nil {
		t.Fatal(err)
	}
	f.clock.Advance(2 * time.Second)
	if _, err := f.auth.Authenticate(bearerRequest(tok)); !errors.Is(err, ErrInvalidCredentials) {
		t.Fatalf("cached token after its key was withdrawn: %v", err)
	}
}

// TestTokenCacheBounded checks the size bound and that a negative size
// disables the cache.
func TestTokenCacheBounded(t *testing.T) {
	f := newFixture(t, nil)
	f.auth.tokens = newTokenCache(8)
	for i := range 40 {
		tok := f.sign(t, f.claims(fmt.Sprintf("s%d", i), "operator"))
		if _, err := f.auth.Authenticate(bearerRequest(tok)); err != nil {
			t.Fatal(err)
		}
		if n := f.auth.tokens.len(); n > 8 {
			t.Fatalf("cache grew to %d entries, bound 8", n)
		}
	}
	f.auth.tokens = newTokenCache(-1)
	tok := f.sign(t, f.claims("y", "operator"))
	for range 2 {
		if _, err := f.auth.Authenticate(bearerRequest(tok)); err != nil {
			t.Fatal(err)
		}
	}
	if f.auth.tokens.len() != 0 {
		t.Fatal("disabled cache holds tokens")
	}
}

// TestTokenCacheKeyRestricted checks that re-publishing the verifying key
// for another algorithm stops its cached tokens.
func TestTokenCacheKeyRestricted(t *testing.T) {
	f := newFixture(t, nil)
	tok := f.sign(t, f.claims("x", "operator"))
	for range 2 {
		if _, err := f.auth.Authenticate(bearerRequest(tok)); err != nil {
			t.Fatal(err)
		}
	}
	jwk := *f.signer.Public()
	jwk.Algorithm = "ES384"
	if err := WriteJWKS(f.jwks, jwk); err != nil {
		t.Fatal(err)
	}
	// The file may keep its size and (coarse) modification time: reload.
	if err := f.auth.Reload(context.Background()); err != nil {
		t.Fatal(err)
	}
	if _, err := f.auth.Authenticate(bearerRequest(tok)); !errors.Is(err, ErrInvalidCredentials) {
		t.Fatalf("cached ES256 token after its key was restricted to ES384: %v", err)
	}
}
