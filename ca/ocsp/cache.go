package ocsp

import (
	"crypto"
	"math/big"
	"sync"
	"time"
)

// Entry is one signed response ready to serve.
type Entry struct {
	DER        []byte
	State      State
	ThisUpdate time.Time
	NextUpdate time.Time
	// ETag is a strong validator of DER (quoted).
	ETag string
}

// ResponseCache holds signed responses for the hot path. Cache is the
// in-memory implementation; a shared one (e.g. in the store, for several
// instances or tens of millions of certificates: about 0.8 KB per response
// with the responder certificate) can take its place. Put must keep
// Cache's rules: a revoked response is never replaced by another status,
// nor a response by an older one.
type ResponseCache interface {
	Get(issuer string, h crypto.Hash, serial *big.Int) (*Entry, bool)
	Put(issuer string, h crypto.Hash, serial *big.Int, e *Entry) bool
	Len() int
}

type cacheKey struct {
	issuer string
	hash   crypto.Hash
	serial string // big-endian magnitude
}

const cacheShards = 64

// Cache holds pre-signed responses by (issuer, CertID hash, serial). It is
// safe for concurrent use; a revoked response is never replaced by one of
// another status (revocation is final), nor any response by an older one.
type Cache struct {
	shards [cacheShards]struct {
		mu sync.RWMutex
		m  map[cacheKey]*Entry
	}
}

// NewCache returns an empty cache.
func NewCache() *Cache {
	c := &Cache{}
	for i := range c.shards {
		c.shards[i].m = map[cacheKey]*Entry{}
	}
	return c
}

func key(issuer string, h crypto.Hash, serial *big.Int) (cacheKey, int) {
	b := serial.Bytes()
	shard := 0
	if len(b) > 0 {
		shard = int(b[len(b)-1]) % cacheShards
	}
	return cacheKey{issuer, h, string(b)}, shard
}

// Get returns the cached response, if any.
func (c *Cache) Get(issuer string, h crypto.Hash, serial *big.Int) (*Entry, bool) {
	k, i := key(issuer, h, serial)
	s := &c.shards[i]
	s.mu.RLock()
	e, ok := s.m[k]
	s.mu.RUnlock()
	return e, ok
}

// Put stores e unless the cached response is revoked and e is not, or the
// cached response is newer. It reports whether e was stored.
func (c *Cache) Put(issuer string, h crypto.Hash, serial *big.Int, e *Entry) bool {
	k, i := key(issuer, h, serial)
	s := &c.shards[i]
	s.mu.Lock()
	defer s.mu.Unlock()
	if old, ok := s.m[k]; ok {
		if old.State == Revoked && e.State != Revoked {
			return false
		}
		if old.State == e.State && e.ThisUpdate.Before(old.ThisUpdate) {
			return false
		}
	}
	s.m[k] = e
	return true
}

// Len returns the number of cached responses.
func (c *Cache) Len() int {
	n := 0
	for i := range c.shards {
		s := &c.shards[i]
		s.mu.RLock()
		n += len(s.m)
		s.mu.RUnlock()
	}
	return n
}
