package auth

import (
	"crypto"
	"crypto/sha256"
	"sync"
	"time"

	"github.com/go-jose/go-jose/v4"
)

// DefaultTokenCacheSize is how many verified bearer tokens an Authenticator
// remembers when Options.TokenCacheSize is zero.
const DefaultTokenCacheSize = 4096

// maxTokenCacheAge bounds how long a verified token is trusted without
// checking its signature again, whatever its expiry says.
const maxTokenCacheAge = 10 * time.Minute

// tokenCache remembers bearer tokens whose signature has been verified, so
// that a client presenting the same token on every request (a load of
// seals, an officer issuing certificates) costs one signature verification,
// not one per request.
//
// Only the signature check is skipped on a hit. The claims (expiry, not
// before, audience, roles) are checked again on every request, and the
// verifying key must still be one the issuer publishes: a key removed from
// the JWKS stops its cached tokens at once. Entries are keyed by the SHA-256
// of the whole compact token, signature included, so a token that differs in
// any byte is verified afresh.
type tokenCache struct {
	max int

	mu      sync.Mutex
	entries map[[sha256.Size]byte]*cachedToken
}

// cachedToken is what a verification established about one token.
type cachedToken struct {
	issuer  *issuer
	kid     string
	alg     jose.SignatureAlgorithm
	key     crypto.PublicKey // the key whose signature verified
	claims  tokenClaims
	expires time.Time // when the entry stops being used
}

func newTokenCache(size int) *tokenCache {
	if size < 0 {
		return nil
	}
	if size == 0 {
		size = DefaultTokenCacheSize
	}
	return &tokenCache{max: size, entries: make(map[[sha256.Size]byte]*cachedToken)}
}

// get returns the entry for raw if it is present and still usable at now.
func (c *tokenCache) get(raw string, now time.Time) (*cachedToken, [sha256.Size]byte) {
	sum := sha256.Sum256([]byte(raw))
	if c == nil {
		return nil, sum
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.entries[sum]
	if !ok {
		return nil, sum
	}
	if !now.Before(e.expires) {
		delete(c.entries, sum)
		return nil, sum
	}
	return e, sum
}

// put remembers a verified token until min(its expiry, now+maxTokenCacheAge).
func (c *tokenCache) put(sum [sha256.Size]byte, e *cachedToken, now time.Time) {
	if c == nil {
		return
	}
	e.expires = now.Add(maxTokenCacheAge)
	if e.claims.Expiry != nil && e.claims.Expiry.Time().Before(e.expires) {
		e.expires = e.claims.Expiry.Time()
	}
	if !now.Before(e.expires) {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.entries) >= c.max {
		c.evictLocked(now)
	}
	c.entries[sum] = e
}

// evictLocked drops the expired entries and, if the cache is still full, an
// eighth of the others (Go's map order makes the choice arbitrary).
func (c *tokenCache) evictLocked(now time.Time) {
	for k, e := range c.entries {
		if !now.Before(e.expires) {
			delete(c.entries, k)
		}
	}
	drop := len(c.entries) - c.max + max(1, c.max/8)
	for k := range c.entries {
		if drop <= 0 {
			break
		}
		delete(c.entries, k)
		drop--
	}
}

// len reports the number of entries (for tests).
func (c *tokenCache) len() int {
	if c == nil {
		return 0
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.entries)
}

// stillPublished reports whether key is among keys and may still verify
// signatures made with alg (a re-published key restricted to another
// algorithm stops its cached tokens).
func stillPublished(keys []jose.JSONWebKey, key crypto.PublicKey, alg jose.SignatureAlgorithm) bool {
	eq, ok := key.(interface{ Equal(crypto.PublicKey) bool })
	if !ok {
		return false
	}
	for _, k := range keys {
		if eq.Equal(k.Key) && keyFits(k, alg) {
			return true
		}
	}
	return false
}
