package auth

import (
	"context"
	"crypto/elliptic"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/thiqa/thiqa/internal/josesigner"
)

// jwksServer serves a JWK Set that the test can replace, counting requests.
type jwksServer struct {
	*httptest.Server
	mu    sync.Mutex
	keys  []jose.JSONWebKey
	hits  atomic.Int32
	fail  atomic.Bool
	delay time.Duration
}

func newJWKSServer(t *testing.T, signers ...*josesigner.Signer) *jwksServer {
	s := &jwksServer{}
	s.set(signers...)
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.hits.Add(1)
		if s.delay > 0 {
			select {
			case <-time.After(s.delay):
			case <-r.Context().Done():
				return
			}
		}
		if s.fail.Load() {
			http.Error(w, "down", http.StatusServiceUnavailable)
			return
		}
		s.mu.Lock()
		defer s.mu.Unlock()
		w.Header().Set("Content-Type", "application/jwk-set+json")
		_ = json.NewEncoder(w).Encode(jose.JSONWebKeySet{Keys: s.keys})
	}))
	t.Cleanup(s.Close)
	return s
}

func (s *jwksServer) set(signers ...*josesigner.Signer) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.keys = nil
	for _, sg := range signers {
		s.keys = append(s.keys, *sg.Public())
	}
}

func TestJWKSURLRefreshOnUnknownKID(t *testing.T) {
	k1 := newSigner(t, newECKey(t, elliptic.P256()))
	k2 := newSigner(t, newECKey(t, elliptic.P384()))
	srv := newJWKSServer(t, k1)
	clock := newClock()
	a, err := New(Config{Issuers: []IssuerConfig{{Issuer: testIssuer, Audience: testAudience, JWKSURL: srv.URL + "/jwks"}}},
		Options{Logger: quietLogger(), Now: clock.Now, HTTPClient: srv.Client(), JWKSRefreshInterval: 10 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	if srv.hits.Load() != 0 {
		t.Fatal("JWKS fetched before first use")
	}
	f := &fixture{auth: a, clock: clock, signer: k1}
	tok1 := f.sign(t, f.claims("NTROM-1", "agency"))
	for i := 0; i < 3; i++ {
		if _, err := a.Authenticate(bearerRequest(tok1)); err != nil {
			t.Fatal(err)
		}
	}
	if n := srv.hits.Load(); n != 1 {
		t.Fatalf("%d fetches for a cached key, want 1", n)
	}

	// The issuer rotates to k2. A token with k2's kid triggers one refresh.
	srv.set(k1, k2)
	f.signer = k2
	tok2 := f.sign(t, f.claims("NTROM-1", "agency"))
	clock.Advance(11 * time.Second)
	if _, err := a.Authenticate(bearerRequest(tok2)); err != nil {
		t.Fatalf("rotated key: %v", err)
	}
	if n := srv.hits.Load(); n != 2 {
		t.Fatalf("%d fetches after rotation, want 2", n)
	}

	// Unknown kids are refetched at most once per refresh interval.
	stranger := newSigner(t, newECKey(t, elliptic.P256()))
	f.signer = stranger
	tok3 := f.sign(t, f.claims("NTROM-1", "agency"))
	clock.Advance(11 * time.Second)
	for i := 0; i < 5; i++ {
		if _, err := a.Authenticate(bearerRequest(tok3)); !errors.Is(err, ErrInvalidCredentials) {
			t.Fatalf("unknown kid: %v", err)
		}
	}
	if n := srv.hits.Load(); n != 3 {
		t.Fatalf("%d fetches for repeated unknown kids, want 3 (rate limited)", n)
	}
	clock.Advance(11 * time.Second)
	_, _ = a.Authenticate(bearerRequest(tok3))
	if n := srv.hits.Load(); n != 4 {
		t.Fatalf("%d fetches after the interval, want 4", n)
	}

	// When the server fails, cached keys keep working.
	srv.fail.Store(true)
	clock.Advance(2 * time.Hour) // cache stale
	f.signer = k1
	if _, err := a.Authenticate(bearerRequest(f.sign(t, f.claims("NTROM-1", "agency")))); err != nil {
		t.Fatalf("stale cache with the issuer down: %v", err)
	}
	if got := testutil.ToFloat64(a.metrics.jwks.WithLabelValues(testIssuer, "error")); got != 1 {
		t.Fatalf("jwks error fetches = %v", got)
	}
	if err := a.Reload(context.Background()); err == nil {
		t.Fatal("Reload with the issuer down succeeded")
	}
}

func TestJWKSURLUnavailableAndTimeout(t *testing.T) {
	k := newSigner(t, newECKey(t, elliptic.P256()))
	srv := newJWKSServer(t, k)
	srv.delay = 2 * time.Second
	clock := newClock()
	a, err := New(Config{Issuers: []IssuerConfig{{Issuer: testIssuer, Audience: testAudience, JWKSURL: srv.URL}}},
		Options{Logger: quietLogger(), Now: clock.Now, HTTPClient: srv.Client(), JWKSFetchTimeout: 100 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	f := &fixture{auth: a, clock: clock, signer: k}
	start := time.Now()
	_, err = a.Authenticate(bearerRequest(f.sign(t, f.claims("x", "operator"))))
	if !errors.Is(err, ErrInvalidCredentials) || !strings.Contains(err.Error(), "unavailable") {
		t.Fatalf("slow JWKS: %v", err)
	}
	if time.Since(start) > time.Second {
		t.Fatalf("JWKS fetch not bounded by its timeout (%s)", time.Since(start))
	}
}

func TestJWKSFileReload(t *testing.T) {
	k1 := newSigner(t, newECKey(t, elliptic.P256()))
	k2 := newSigner(t, newECKey(t, elliptic.P256()))
	f := newFixture(t, nil, k1)
	f.signer = k2
	tok2 := f.sign(t, f.claims("x", "operator"))
	if _, err := f.auth.Authenticate(bearerRequest(tok2)); !errors.Is(err, ErrInvalidCredentials) {
		t.Fatalf("k2 before it is published: %v", err)
	}
	// Publish k2; the change is noticed on the next check.
	if err := WriteJWKS(f.jwks, *k1.Public(), *k2.Public()); err != nil {
		t.Fatal(err)
	}
	f.clock.Advance(2 * time.Second)
	if _, err := f.auth.Authenticate(bearerRequest(tok2)); err != nil {
		t.Fatalf("k2 after publication: %v", err)
	}
	// Withdraw k2 and reload explicitly.
	if err := WriteJWKS(f.jwks, *k1.Public()); err != nil {
		t.Fatal(err)
	}
	if err := f.auth.Reload(context.Background()); err != nil {
		t.Fatal(err)
	}
	if _, err := f.auth.Authenticate(bearerRequest(tok2)); !errors.Is(err, ErrInvalidCredentials) {
		t.Fatalf("k2 after withdrawal: %v", err)
	}
	// A broken file keeps the previous keys.
	if err := os.WriteFile(f.jwks, []byte("{not json"), 0o644); err != nil {
		t.Fatal(err)
	}
	f.clock.Advance(2 * time.Second)
	f.signer = k1
	if _, err := f.auth.Authenticate(bearerRequest(f.sign(t, f.claims("x", "operator")))); err != nil {
		t.Fatalf("k1 with a broken file: %v", err)
	}
	if err := f.auth.Reload(context.Background()); err == nil {
		t.Fatal("Reload of a broken file succeeded")
	}
}

func TestJWKSParsing(t *testing.T) {
	ec := newSigner(t, newECKey(t, elliptic.P256()))
	priv := jose.JSONWebKey{Key: newECKey(t, elliptic.P256()), KeyID: "priv"}
	privJSON, _ := priv.MarshalJSON()
	pubJSON, _ := ec.Public().MarshalJSON()
	doc := `{"keys":[` + string(pubJSON) + `,` + string(privJSON) +
		`,{"kty":"oct","k":"c2VjcmV0","kid":"hmac"},{"kty":"XYZ"},{"kty":"EC","crv":"P-256","use":"enc","x":"1","y":"2"}]}`
	keys, err := parseJWKS([]byte(doc))
	if err != nil {
		t.Fatal(err)
	}
	if len(keys) != 2 {
		t.Fatalf("%d keys kept, want 2 (public EC, public part of the private one)", len(keys))
	}
	for _, k := range keys {
		if !k.IsPublic() {
			t.Fatal("private key kept")
		}
	}
	for _, bad := range []string{``, `[]`, `{"keys":[]}`, `{"keys":[{"kty":"oct","k":"c2VjcmV0"}]}`} {
		if _, err := parseJWKS([]byte(bad)); err == nil {
			t.Errorf("parseJWKS(%q) succeeded", bad)
		}
	}
	// WriteJWKS never writes private parts; ReadJWKSFile reads back.
	path := filepath.Join(t.TempDir(), "k.json")
	if err := WriteJWKS(path, priv); err != nil {
		t.Fatal(err)
	}
	data, _ := os.ReadFile(path)
	if strings.Contains(string(data), `"d"`) {
		t.Fatalf("private key written: %s", data)
	}
	got, err := ReadJWKSFile(path)
	if err != nil || len(got) != 1 || got[0].KeyID != "priv" {
		t.Fatalf("ReadJWKSFile: %v %v", got, err)
	}
	if err := WriteJWKS(path, jose.JSONWebKey{Key: []byte("secret")}); err == nil {
		t.Fatal("symmetric key written")
	}
}

// TestJWKSURLConcurrentFirstUse checks that concurrent requests share one
// download of the key set.
func TestJWKSURLConcurrentFirstUse(t *testing.T) {
	k := newSigner(t, newECKey(t, elliptic.P256()))
	srv := newJWKSServer(t, k)
	srv.delay = 50 * time.Millisecond
	clock := newClock()
	a, err := New(Config{Issuers: []IssuerConfig{{Issuer: testIssuer, Audience: testAudience, JWKSURL: srv.URL}}},
		Options{Logger: quietLogger(), Now: clock.Now, HTTPClient: srv.Client()})
	if err != nil {
		t.Fatal(err)
	}
	f := &fixture{auth: a, clock: clock, signer: k}
	tok := f.sign(t, f.claims("12345678", "citizen"))
	var wg sync.WaitGroup
	errs := make(chan error, 16)
	for i := 0; i < 16; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := a.Authenticate(bearerRequest(tok))
			errs <- err
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	if n := srv.hits.Load(); n != 1 {
		t.Fatalf("%d downloads for concurrent first use, want 1", n)
	}
}
