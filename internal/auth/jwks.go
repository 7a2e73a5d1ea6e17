package auth

import (
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/go-jose/go-jose/v4"
)

// maxJWKSBytes bounds a JWKS document read from a file or the network.
const maxJWKSBytes = 1 << 20

// errUnknownKey means no key of the issuer matches the token's kid and algorithm.
var errUnknownKey = errors.New("no issuer key matches the token's key ID and algorithm")

// keySource yields an issuer's public signing keys.
type keySource interface {
	// lookup returns the keys with the given key ID (every key when kid is
	// empty), refreshing the set when it is stale or the kid is unknown.
	lookup(ctx context.Context, kid string) ([]jose.JSONWebKey, error)
	// reload re-reads the key set now.
	reload(ctx context.Context) error
}

// parseJWKS decodes a JWK Set and keeps the usable public signing keys:
// ECDSA, RSA (2048 bits or more) and Ed25519 keys whose "use" is empty or
// "sig". Private parts are dropped; symmetric and unparsable keys are skipped.
func parseJWKS(data []byte) ([]jose.JSONWebKey, error) {
	var set struct {
		Keys []json.RawMessage `json:"keys"`
	}
	if err := json.Unmarshal(data, &set); err != nil {
		return nil, fmt.Errorf("decoding JWKS: %w", err)
	}
	var keys []jose.JSONWebKey
	for _, raw := range set.Keys {
		var k jose.JSONWebKey
		if err := k.UnmarshalJSON(raw); err != nil {
			continue
		}
		if k.Use != "" && k.Use != "sig" {
			continue
		}
		k = k.Public()
		switch pub := k.Key.(type) {
		case *ecdsa.PublicKey, ed25519.PublicKey:
		case *rsa.PublicKey:
			if pub.N.BitLen() < 2048 {
				continue
			}
		default:
			continue
		}
		keys = append(keys, k)
	}
	if len(keys) == 0 {
		return nil, errors.New("JWKS holds no usable public signing key")
	}
	return keys, nil
}

func selectKeys(keys []jose.JSONWebKey, kid string) []jose.JSONWebKey {
	if kid == "" {
		return keys
	}
	var out []jose.JSONWebKey
	for _, k := range keys {
		if k.KeyID == kid {
			out = append(out, k)
		}
	}
	return out
}

// ReadJWKSFile reads the public signing keys of a JWK Set file.
func ReadJWKSFile(path string) ([]jose.JSONWebKey, error) {
	data, err := readLimited(path)
	if err != nil {
		return nil, err
	}
	keys, err := parseJWKS(data)
	if err != nil {
		return nil, fmt.Errorf("auth: %s: %w", path, err)
	}
	return keys, nil
}

func readLimited(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("auth: reading JWKS: %w", err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxJWKSBytes+1))
	if err != nil {
		return nil, fmt.Errorf("auth: reading JWKS %s: %w", path, err)
	}
	if len(data) > maxJWKSBytes {
		return nil, fmt.Errorf("auth: JWKS %s larger than %d bytes", path, maxJWKSBytes)
	}
	return data, nil
}

// WriteJWKS writes the public parts of keys as a JWK Set file, replacing
// path atomically. Private key material is never written.
func WriteJWKS(path string, keys ...jose.JSONWebKey) error {
	set := jose.JSONWebKeySet{Keys: make([]jose.JSONWebKey, 0, len(keys))}
	for i, k := range keys {
		pub := k.Public()
		if !pub.Valid() {
			return fmt.Errorf("auth: JWKS key %d (%q) is not a usable public key", i, k.KeyID)
		}
		set.Keys = append(set.Keys, pub)
	}
	data, err := json.MarshalIndent(set, "", "  ")
	if err != nil {
		return fmt.Errorf("auth: encoding JWKS: %w", err)
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), ".jwks-*")
	if err != nil {
		return fmt.Errorf("auth: writing JWKS: %w", err)
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(append(data, '\n')); err != nil {
		tmp.Close()
		return fmt.Errorf("auth: writing JWKS: %w", err)
	}
	if err := tmp.Chmod(0o644); err != nil {
		tmp.Close()
		return fmt.Errorf("auth: writing JWKS: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("auth: writing JWKS: %w", err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("auth: writing JWKS: %w", err)
	}
	return nil
}

// fileSource serves the keys of a JWKS file, re-reading it when its size or
// modification time changes (checked at most once per checkEvery).
type fileSource struct {
	path       string
	now        func() time.Time
	log        *slog.Logger
	checkEvery time.Duration

	mu        sync.Mutex
	keys      []jose.JSONWebKey
	modTime   time.Time
	size      int64
	lastCheck time.Time
}

func newFileSource(path string, now func() time.Time, log *slog.Logger) (*fileSource, error) {
	s := &fileSource{path: path, now: now, log: log, checkEvery: time.Second}
	if err := s.reload(context.Background()); err != nil {
		return nil, err
	}
	return s, nil
}

func (s *fileSource) reload(context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	fi, err := os.Stat(s.path)
	if err != nil {
		return fmt.Errorf("auth: reading JWKS: %w", err)
	}
	return s.readLocked(fi)
}

func (s *fileSource) readLocked(fi os.FileInfo) error {
	keys, err := ReadJWKSFile(s.path)
	if err != nil {
		return err
	}
	s.keys, s.modTime, s.size, s.lastCheck = keys, fi.ModTime(), fi.Size(), s.now()
	return nil
}

func (s *fileSource) lookup(_ context.Context, kid string) ([]jose.JSONWebKey, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if now := s.now(); now.Sub(s.lastCheck) >= s.checkEvery || now.Before(s.lastCheck) {
		s.lastCheck = now
		fi, err := os.Stat(s.path)
		switch {
		case err != nil:
			s.log.Warn("JWKS file unreadable; keeping the keys read before", "path", s.path, "error", err)
		case !fi.ModTime().Equal(s.modTime) || fi.Size() != s.size:
			if err := s.readLocked(fi); err != nil {
				s.log.Warn("JWKS file changed but cannot be used; keeping the keys read before", "path", s.path, "error", err)
			} else {
				s.log.Info("JWKS file reloaded", "path", s.path, "keys", len(s.keys))
			}
		}
	}
	return selectKeys(s.keys, kid), nil
}

// urlSource serves the keys published at a JWKS URL: fetched on first use,
// cached for maxAge, and re-fetched when a token names an unknown kid, at
// most once per minInterval.
type urlSource struct {
	url         string
	client      *http.Client
	timeout     time.Duration
	minInterval time.Duration
	maxAge      time.Duration
	now         func() time.Time
	log         *slog.Logger
	onFetch     func(ok bool)

	fetchMu sync.Mutex // serialises fetches

	mu          sync.Mutex // guards the fields below
	keys        []jose.JSONWebKey
	fetched     time.Time
	lastAttempt time.Time
}

func (s *urlSource) cached(kid string) (keys []jose.JSONWebKey, fresh bool, sinceAttempt time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.now()
	fresh = !s.fetched.IsZero() && now.Sub(s.fetched) < s.maxAge
	sinceAttempt = now.Sub(s.lastAttempt)
	if s.lastAttempt.IsZero() || sinceAttempt < 0 {
		sinceAttempt = s.minInterval
	}
	return selectKeys(s.keys, kid), fresh, sinceAttempt
}

func (s *urlSource) lookup(ctx context.Context, kid string) ([]jose.JSONWebKey, error) {
	if keys, fresh, _ := s.cached(kid); len(keys) > 0 && fresh {
		return keys, nil
	}
	s.fetchMu.Lock()
	defer s.fetchMu.Unlock()
	keys, fresh, sinceAttempt := s.cached(kid)
	if len(keys) > 0 && fresh {
		return keys, nil // another request refreshed the set meanwhile
	}
	if sinceAttempt < s.minInterval {
		return keys, nil // rate limited: use what we have (possibly nothing)
	}
	if err := s.fetch(ctx); err != nil {
		if len(keys) > 0 {
			s.log.Warn("JWKS refresh failed; using the cached keys", "url", s.url, "error", err)
			return keys, nil
		}
		return nil, err
	}
	keys, _, _ = s.cached(kid)
	return keys, nil
}

func (s *urlSource) reload(ctx context.Context) error {
	s.fetchMu.Lock()
	defer s.fetchMu.Unlock()
	return s.fetch(ctx)
}

// fetch downloads the key set; the caller holds fetchMu.
func (s *urlSource) fetch(ctx context.Context) (err error) {
	s.mu.Lock()
	s.lastAttempt = s.now()
	s.mu.Unlock()
	defer func() {
		if s.onFetch != nil {
			s.onFetch(err == nil)
		}
	}()
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, s.url, nil)
	if err != nil {
		return fmt.Errorf("auth: JWKS request: %w", err)
	}
	req.Header.Set("Accept", "application/jwk-set+json, application/json")
	resp, err := s.client.Do(req)
	if err != nil {
		return fmt.Errorf("auth: fetching JWKS: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("auth: fetching JWKS %s: HTTP status %d", s.url, resp.StatusCode)
	}
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxJWKSBytes+1))
	if err != nil {
		return fmt.Errorf("auth: fetching JWKS %s: %w", s.url, err)
	}
	if len(data) > maxJWKSBytes {
		return fmt.Errorf("auth: JWKS at %s larger than %d bytes", s.url, maxJWKSBytes)
	}
	keys, err := parseJWKS(data)
	if err != nil {
		return fmt.Errorf("auth: JWKS at %s: %w", s.url, err)
	}
	s.mu.Lock()
	s.keys, s.fetched = keys, s.now()
	s.mu.Unlock()
	s.log.Info("JWKS fetched", "url", s.url, "keys", len(keys))
	return nil
}
