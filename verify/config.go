package verify

import (
	"cmp"
	"errors"
	"fmt"
	"math"
	"strings"
	"time"

	"github.com/thiqa/thiqa/internal/clientip"
	"github.com/thiqa/thiqa/verify/tsl"
)

// Config is the serialisable configuration of verification for relying
// parties (thiqa.yaml's verify section): POST /api/v1/verify and the page
// at GET /verify. The deployment's own root CA is always trusted; more
// anchors come from PEM files. cmd/thiqa turns it into Options.
type Config struct {
	// Disabled turns the verification API and page off.
	Disabled bool `yaml:"disabled,omitempty"`
	// TrustAnchorFiles are PEM files of further trusted roots (relative to
	// the data folder).
	TrustAnchorFiles []string `yaml:"trustAnchorFiles,omitempty"`
	// MaxUploadBytes bounds one uploaded PDF (default 64 MiB).
	MaxUploadBytes int64 `yaml:"maxUploadBytes"`
	// RatePerSecond is how many verifications one client IP may start per
	// second on average (default 5).
	RatePerSecond float64 `yaml:"ratePerSecond"`
	// Burst is how many verifications one client IP may start at once
	// (default 20).
	Burst int `yaml:"burst"`
	// MaxConcurrent bounds the verifications of POST /api/v1/verify (and
	// so of the page) running at once over all clients; beyond it a
	// request waits up to a second for a slot, then gets 503 with
	// Retry-After. 0: twice the CPUs the process may use
	// (DefaultMaxConcurrent).
	MaxConcurrent int `yaml:"maxConcurrent,omitempty"`
	// MaxConcurrentPerClient bounds the requests one client IP has in
	// progress at once, upload included (default 2); raise it when many
	// people verify from behind one address.
	MaxConcurrentPerClient int `yaml:"maxConcurrentPerClient,omitempty"`
	// OfflineRevocation, when true, never fetches OCSP responses or CRLs
	// online: only revocation data embedded in the document is used.
	OfflineRevocation bool `yaml:"offlineRevocation,omitempty"`
	// FetchTimeout bounds each online revocation fetch (default 10s).
	FetchTimeout time.Duration `yaml:"fetchTimeout"`
	// FetchAllowHosts are the hosts ("host:port", or "host" for ports 80
	// and 443) that online revocation fetches may reach at whatever
	// address they resolve to, e.g. a CA's responder on an internal
	// network. publicBaseURL's host is always allowed; every other host
	// only at a public address.
	FetchAllowHosts []string `yaml:"fetchAllowHosts,omitempty"`

	// TrustedLists are ETSI TS 119 612 trusted lists (or the EU list of
	// lists) whose qualified services are trust anchors and decide the
	// qualified status; without any, no signature is reported qualified.
	TrustedLists []tsl.SourceConfig `yaml:"trustedLists,omitempty"`
	// TrustedListCache keeps fetched lists (default tsl/cache).
	TrustedListCache string `yaml:"trustedListCache,omitempty"`
	// TrustedListRefresh is how often `thiqa serve` reloads them (default 6h).
	TrustedListRefresh time.Duration `yaml:"trustedListRefresh,omitempty"`
	// TrustedListsOffline reads files and cached copies only.
	TrustedListsOffline bool `yaml:"trustedListsOffline,omitempty"`
	// TrustedProxies are the reverse proxies and load balancers in front
	// of this server (CIDR prefixes or single addresses). Only from these
	// peers are Forwarded (RFC 7239) and X-Forwarded-For believed, to find
	// the client's address; it serves every rate limit and every log line
	// of `thiqa serve`, not only verification. Empty: the TCP peer is the
	// client and those headers are ignored.
	TrustedProxies []string `yaml:"trustedProxies,omitempty"`
}

// maxConcurrentBound is the largest verify.maxConcurrent and
// verify.maxConcurrentPerClient accepted: far above what a machine runs
// at once, low enough that a typo is caught.
const maxConcurrentBound = 4096

// DefaultConfig returns the verification settings of a local setup.
func DefaultConfig() Config {
	return Config{MaxUploadBytes: 64 << 20, RatePerSecond: 5, Burst: 20, FetchTimeout: 10 * time.Second}
}

// WithDefaults returns c with every zero field set to its default, so that
// a configuration written before the verify section existed still works.
func (c Config) WithDefaults() Config {
	d := DefaultConfig()
	c.MaxUploadBytes = cmp.Or(c.MaxUploadBytes, d.MaxUploadBytes)
	c.RatePerSecond = cmp.Or(c.RatePerSecond, d.RatePerSecond)
	c.Burst = cmp.Or(c.Burst, d.Burst)
	c.FetchTimeout = cmp.Or(c.FetchTimeout, d.FetchTimeout)
	return c
}

// Validate checks the verify section; zero values mean the defaults.
func (c Config) Validate() error {
	var errs []string
	if c.MaxUploadBytes < 0 {
		errs = append(errs, "verify.maxUploadBytes: must not be negative")
	}
	if c.RatePerSecond < 0 {
		errs = append(errs, "verify.ratePerSecond: must not be negative")
	} else if math.IsNaN(c.RatePerSecond) || math.IsInf(c.RatePerSecond, 0) {
		// NaN would refuse every client once its burst is spent, infinity
		// would lift the limit.
		errs = append(errs, fmt.Sprintf("verify.ratePerSecond: want a finite number, got %v", c.RatePerSecond))
	}
	if c.Burst < 0 {
		errs = append(errs, "verify.burst: must not be negative")
	}
	if c.MaxConcurrent < 0 || c.MaxConcurrent > maxConcurrentBound {
		errs = append(errs, fmt.Sprintf("verify.maxConcurrent: want 1 to %d (or 0 for twice the CPUs), got %d", maxConcurrentBound, c.MaxConcurrent))
	}
	if c.MaxConcurrentPerClient < 0 || c.MaxConcurrentPerClient > maxConcurrentBound {
		errs = append(errs, fmt.Sprintf("verify.maxConcurrentPerClient: want 1 to %d (or 0 for %d), got %d", maxConcurrentBound, DefaultMaxConcurrentPerClient, c.MaxConcurrentPerClient))
	}
	if c.FetchTimeout < 0 || c.FetchTimeout > 5*time.Minute {
		errs = append(errs, fmt.Sprintf("verify.fetchTimeout: want 0 to 5m, got %s", c.FetchTimeout))
	}
	for i, h := range c.FetchAllowHosts {
		if _, err := ParseFetchHost(h); err != nil {
			errs = append(errs, fmt.Sprintf("verify.fetchAllowHosts[%d]: %v", i, err))
		}
	}
	for i, t := range c.TrustedLists {
		if err := t.Validate(fmt.Sprintf("verify.trustedLists[%d]", i)); err != nil {
			errs = append(errs, err.Error())
		}
	}
	if c.TrustedListRefresh < 0 || (c.TrustedListRefresh > 0 && c.TrustedListRefresh < time.Minute) || c.TrustedListRefresh > 7*24*time.Hour {
		errs = append(errs, fmt.Sprintf("verify.trustedListRefresh: want 1m to 168h, got %s", c.TrustedListRefresh))
	}
	for i, p := range c.TrustedProxies {
		if _, err := clientip.ParsePrefix(p); err != nil {
			errs = append(errs, fmt.Sprintf("verify.trustedProxies[%d]: %v", i, err))
		}
	}
	for i, f := range c.TrustAnchorFiles {
		if strings.TrimSpace(f) == "" {
			errs = append(errs, fmt.Sprintf("verify.trustAnchorFiles[%d]: empty file name", i))
		}
	}
	if len(errs) > 0 {
		return errors.New(strings.Join(errs, "; "))
	}
	return nil
}
