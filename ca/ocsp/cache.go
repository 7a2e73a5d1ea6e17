package ocsp

import (
	"crypto"
	"math/big"
	"sync"
	"sync/atomic"
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
	// by is the responder that signed DER (nil when not known): a
	// response it signed is not served once it is revoked.
	by *signing
}

// ResponseCache holds signed responses for the hot path. Cache is the
// in-memory implementation; a shared one (e.g. in the store, for several
// instances) can take its place. Put must keep Cache's rules: a revoked
// response is never replaced by another status, nor a response by an older
// one, and once a revoked response was Put for a serial no response of
// another status is ever stored for it, even after eviction. Full reports
// that pre-signing should stop (the rest is signed on demand).
type ResponseCache interface {
	Get(issuer string, h crypto.Hash, serial *big.Int) (*Entry, bool)
	Put(issuer string, h crypto.Hash, serial *big.Int, e *Entry) bool
	Len() int
	Full() bool
}

type cacheKey struct {
	issuer string
	hash   crypto.Hash
	serial string // big-endian magnitude
}

// revokedKey names a certificate whatever the CertID hash algorithm.
type revokedKey struct {
	issuer string
	serial string
}

const cacheShards = 64

// DefaultCacheEntries is the capacity of a Cache when none is given.
const DefaultCacheEntries = 200_000

type slot struct {
	key cacheKey
	e   *Entry
	ref atomic.Bool // CLOCK reference bit, set by Get
}

type shard struct {
	mu    sync.RWMutex
	m     map[cacheKey]int // index in slots
	slots []slot
	limit int
	hand  int
	// revoked holds every certificate a revoked response was Put for. It is
	// never evicted (revoked certificates are few and the keys small) so a
	// response of another status signed from a status read just before the
	// revocation is refused even after the revoked response was evicted.
	revoked map[revokedKey]struct{}
}

// Cache holds signed responses by (issuer, CertID hash, serial), at most its
// capacity; beyond it Put evicts a response not read recently (CLOCK, per
// shard). It is safe for concurrent use; a revoked response is never
// replaced by one of another status (revocation is final), nor any response
// by an older one, and a certificate once cached as revoked never gets a
// response of another status again.
type Cache struct {
	shards    [cacheShards]shard
	capacity  int
	n         atomic.Int64
	evictions atomic.Uint64
}

// NewCache returns an empty cache holding at most capacity responses
// (DefaultCacheEntries if capacity < 1). The capacity is split evenly
// between the shards, so a capacity below the shard count leaves some
// serials uncached (always signed on demand).
func NewCache(capacity int) *Cache {
	if capacity < 1 {
		capacity = DefaultCacheEntries
	}
	c := &Cache{capacity: capacity}
	for i := range c.shards {
		s := &c.shards[i]
		s.limit = capacity / cacheShards
		if i < capacity%cacheShards {
			s.limit++
		}
		s.m = map[cacheKey]int{}
		s.revoked = map[revokedKey]struct{}{}
	}
	return c
}

func key(issuer string, h crypto.Hash, serial *big.Int) (cacheKey, int) {
	b := serial.Bytes() // the magnitude: the sign goes in the key below
	shard := 0
	if len(b) > 0 {
		shard = int(b[len(b)-1]) % cacheShards
	}
	k := string(b)
	if serial.Sign() < 0 {
		k = "-" + k // serial -7 is not serial 7
	}
	return cacheKey{issuer, h, k}, shard
}

// Get returns the cached response, if any.
func (c *Cache) Get(issuer string, h crypto.Hash, serial *big.Int) (*Entry, bool) {
	k, i := key(issuer, h, serial)
	s := &c.shards[i]
	s.mu.RLock()
	defer s.mu.RUnlock()
	j, ok := s.m[k]
	if !ok {
		return nil, false
	}
	sl := &s.slots[j]
	// A certificate revoked since its entry was signed is a miss, whatever
	// the CertID hash: a revocation that stored its revoked response for
	// one hash and failed before the others must not leave them "good".
	if sl.e.State != Revoked && len(s.revoked) > 0 {
		if _, revoked := s.revoked[revokedKey{issuer, k.serial}]; revoked {
			return nil, false
		}
	}
	if !sl.ref.Load() { // no write (and no cache-line bouncing) on a hot entry
		sl.ref.Store(true)
	}
	return sl.e, true
}

// Put stores e unless the certificate was ever cached as revoked and e is
// not revoked, or the cached response is newer. A full shard evicts the
// first response its clock hand finds unread since the last sweep. It
// reports whether e was stored.
func (c *Cache) Put(issuer string, h crypto.Hash, serial *big.Int, e *Entry) bool {
	k, i := key(issuer, h, serial)
	rk := revokedKey{issuer, k.serial}
	s := &c.shards[i]
	s.mu.Lock()
	defer s.mu.Unlock()
	if e.State == Revoked {
		s.revoked[rk] = struct{}{}
	} else if _, ok := s.revoked[rk]; ok {
		return false
	}
	if j, ok := s.m[k]; ok {
		old := s.slots[j].e
		if old.State == Revoked && e.State != Revoked {
			return false // unreachable while revoked is kept; belt and braces
		}
		if old.State == e.State && e.ThisUpdate.Before(old.ThisUpdate) {
			return false
		}
		s.slots[j].e = e
		return true
	}
	if s.limit == 0 {
		return false
	}
	if len(s.slots) < s.limit {
		s.slots = append(s.slots, slot{key: k, e: e})
		s.m[k] = len(s.slots) - 1
		c.n.Add(1)
		return true
	}
	for s.slots[s.hand].ref.Load() { // ends within one turn: each pass clears a bit
		s.slots[s.hand].ref.Store(false)
		s.hand = (s.hand + 1) % len(s.slots)
	}
	victim := &s.slots[s.hand]
	delete(s.m, victim.key)
	victim.key, victim.e = k, e
	s.m[k] = s.hand
	s.hand = (s.hand + 1) % len(s.slots)
	c.evictions.Add(1)
	return true
}

// Len returns the number of cached responses.
func (c *Cache) Len() int { return int(c.n.Load()) }

// Cap returns the capacity.
func (c *Cache) Cap() int { return c.capacity }

// Full reports whether the cache has no room left without evicting: it
// holds its capacity, or one shard already had to evict (responses are only
// ever removed by eviction, so a shard once full stays full).
func (c *Cache) Full() bool { return c.evictions.Load() > 0 || c.Len() >= c.capacity }

// Evictions returns the number of responses evicted so far.
func (c *Cache) Evictions() uint64 { return c.evictions.Load() }

// RevokedLen returns the number of certificates remembered as revoked.
func (c *Cache) RevokedLen() int {
	n := 0
	for i := range c.shards {
		s := &c.shards[i]
		s.mu.RLock()
		n += len(s.revoked)
		s.mu.RUnlock()
	}
	return n
}
