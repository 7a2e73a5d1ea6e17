// Package ocsp is Thiqa's OCSP responder (RFC 6960, nonce per RFC 8954):
// a strict request parser, responses signed by a delegated responder
// certificate per issuing CA, a cache of pre-signed responses kept fresh by
// a background Presigner and replaced at once on revocation, on-demand
// signing for cache misses and nonce requests, and the HTTP handler for
// POST /ocsp and GET /ocsp/{base64} with caching headers.
package ocsp

import (
	"cmp"
	"crypto"
	"errors"
	"fmt"
	"strings"
	"time"
)

// Config is the serialisable OCSP configuration (yaml, camelCase keys).
type Config struct {
	// Validity is nextUpdate - thisUpdate of every response (default 24h).
	Validity time.Duration `yaml:"validity"`
	// RefreshEvery is how often every response is re-signed (default
	// Validity/2); cached responses closer than Validity/4 to nextUpdate are
	// re-signed on demand.
	RefreshEvery time.Duration `yaml:"refreshEvery"`
	// RenewBefore asks the ResponderRenewer for a new responder certificate
	// when the current one expires within this time (default 2*Validity).
	RenewBefore time.Duration `yaml:"renewBefore"`
	// MaxAge bounds the HTTP max-age of GET responses (default 5m) so caches
	// and CDNs learn of a revocation within minutes; nextUpdate bounds it too.
	MaxAge time.Duration `yaml:"maxAge"`
	// PresignHashes are the CertID hash algorithms pre-signed for every
	// certificate ("sha1", "sha256", "sha384", "sha512"; default ["sha1"],
	// what openssl and most clients send). Others are signed on demand.
	PresignHashes []string `yaml:"presignHashes"`
	// MaxConcurrentSigns bounds on-demand signatures in flight (cache misses,
	// nonce and multi-certificate requests); beyond it clients get tryLater.
	MaxConcurrentSigns int `yaml:"maxConcurrentSigns"`
	// StoreTimeout bounds one status lookup (default 2s).
	StoreTimeout time.Duration `yaml:"storeTimeout"`
	// PresignWorkers is the number of signatures in flight while
	// pre-signing (default 2, at most MaxPresignWorkers; raise it for a
	// network HSM).
	PresignWorkers int `yaml:"presignWorkers"`
	// CacheEntries bounds the signed responses kept in memory (about 2 KB
	// each; default 200000, 0 means the default, otherwise 1000 to 100
	// million). Pre-signing stops when the cache is full; the rest is signed
	// on demand and the least recently read responses are evicted. Apart
	// from this bound, every certificate the responder has answered as
	// revoked is remembered (about 120 bytes each, never evicted), so that
	// no eviction can let a stale "good" response back in.
	CacheEntries int `yaml:"cacheEntries"`
}

// MaxPresignWorkers bounds Config.PresignWorkers: each is a goroutine, and
// the pre-signing queue holds four jobs per worker.
const MaxPresignWorkers = 1024

// Settings is a validated Config.
type Settings struct {
	Validity, RefreshEvery, RenewBefore, MaxAge, StoreTimeout time.Duration
	PresignHashes                                             []crypto.Hash
	MaxConcurrentSigns, PresignWorkers, CacheEntries          int
}

// ErrConfig marks an invalid OCSP configuration.
var ErrConfig = errors.New("invalid OCSP configuration")

// Validate checks c and fills defaults.
func (c Config) Validate() (Settings, error) {
	s := Settings{Validity: c.Validity, RefreshEvery: c.RefreshEvery, RenewBefore: c.RenewBefore, MaxAge: c.MaxAge,
		StoreTimeout: c.StoreTimeout, MaxConcurrentSigns: c.MaxConcurrentSigns, PresignWorkers: c.PresignWorkers,
		CacheEntries: c.CacheEntries}
	if s.Validity == 0 {
		s.Validity = 24 * time.Hour
	}
	if s.RefreshEvery == 0 {
		s.RefreshEvery = s.Validity / 2
	}
	if s.RenewBefore == 0 {
		s.RenewBefore = 2 * s.Validity
	}
	if s.MaxAge == 0 {
		s.MaxAge = 5 * time.Minute
	}
	if s.StoreTimeout == 0 {
		s.StoreTimeout = 2 * time.Second
	}
	s.MaxConcurrentSigns = cmp.Or(s.MaxConcurrentSigns, 32)
	s.PresignWorkers = cmp.Or(s.PresignWorkers, 2)
	s.CacheEntries = cmp.Or(s.CacheEntries, DefaultCacheEntries)
	names := c.PresignHashes
	if len(names) == 0 {
		names = []string{"sha1"}
	}
	for _, n := range names {
		h, ok := map[string]crypto.Hash{"sha1": crypto.SHA1, "sha256": crypto.SHA256, "sha384": crypto.SHA384, "sha512": crypto.SHA512}[strings.ToLower(n)]
		if !ok {
			return Settings{}, fmt.Errorf("%w: presign hash %q", ErrConfig, n)
		}
		s.PresignHashes = append(s.PresignHashes, h)
	}
	switch {
	case s.Validity < 10*time.Minute || s.Validity > 7*24*time.Hour:
		return Settings{}, fmt.Errorf("%w: validity %s outside [10m, 7d]", ErrConfig, s.Validity)
	case s.RefreshEvery <= 0 || s.RefreshEvery > s.Validity*3/4:
		return Settings{}, fmt.Errorf("%w: refreshEvery %s must be in (0, 3/4 validity]", ErrConfig, s.RefreshEvery)
	case s.RenewBefore < s.Validity:
		return Settings{}, fmt.Errorf("%w: renewBefore %s shorter than validity", ErrConfig, s.RenewBefore)
	case s.MaxAge < 0 || s.StoreTimeout <= 0 || s.MaxConcurrentSigns < 1 || s.PresignWorkers < 1:
		return Settings{}, fmt.Errorf("%w: maxAge, storeTimeout, maxConcurrentSigns and presignWorkers must be positive", ErrConfig)
	case s.CacheEntries < 1000 || s.CacheEntries > 100_000_000:
		return Settings{}, fmt.Errorf("%w: cacheEntries %d outside [1000, 100000000] (0 means %d)", ErrConfig, s.CacheEntries, DefaultCacheEntries)
	case s.PresignWorkers > MaxPresignWorkers:
		return Settings{}, fmt.Errorf("%w: presignWorkers %d above %d", ErrConfig, s.PresignWorkers, MaxPresignWorkers)
	case s.PresignWorkers > s.MaxConcurrentSigns:
		return Settings{}, fmt.Errorf("%w: presignWorkers above maxConcurrentSigns would starve on-demand signing", ErrConfig)
	}
	return s, nil
}
