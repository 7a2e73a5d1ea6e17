// Package crl generates and publishes the certificate revocation lists of
// Thiqa's issuing CAs (RFC 5280 §5): version 2 CRLs with a strictly
// increasing CRL number, authority key identifier, reason codes and, for
// large CAs, partitions marked by a critical issuingDistributionPoint.
//
// Entries are streamed from a RevokedSource and encoded as they arrive, so a
// partition of any size is built without holding one Go value per entry; the
// CRL is linted (zlint RFC 5280 and community lints) on a copy signed by a
// throwaway key before the CA's crypto.Signer signs it.
package crl

import (
	"cmp"
	"errors"
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// Config is the serialisable CRL configuration (yaml, camelCase keys).
type Config struct {
	// Validity is nextUpdate - thisUpdate (e.g. "24h").
	Validity time.Duration `yaml:"validity"`
	// RegenerateEvery is how often CRLs are regenerated without a revocation
	// (must be well under Validity).
	RegenerateEvery time.Duration `yaml:"regenerateEvery"`
	// TriggerDelay is the debounce after a revocation before regenerating.
	TriggerDelay time.Duration `yaml:"triggerDelay"`
	// Partitions is the number of partition CRLs per issuing CA (1 to
	// MaxPartitions): with more than one, each certificate names its
	// partition's CRL, BASE/crl/{ca}-{n}.crl, and BASE/crl/{ca}.crl stays
	// published for the certificates issued before. It may grow later;
	// certificates keep naming the partition they were issued in.
	Partitions PartitionCount `yaml:"partitions"`
	// MaxEntriesPerPartition is the size a partition is expected to stay
	// under; exceeding it is logged and counted (never a refusal to publish).
	MaxEntriesPerPartition int `yaml:"maxEntriesPerPartition"`
	// BaseURL is the public base URL; CRLs live at BASE/crl/{ca}.crl and
	// BASE/crl/{ca}-{n}.crl.
	BaseURL string `yaml:"baseURL"`
	// MaxAge bounds the HTTP max-age of served CRLs (default 5m, never past
	// nextUpdate) so caches and CDNs pick up a revocation within minutes.
	MaxAge time.Duration `yaml:"maxAge"`
	// LintSampleEntries bounds the entries copied into the linted CRL (the
	// header, extensions and the first entries); 0 means 10,000.
	LintSampleEntries int `yaml:"lintSampleEntries"`
	// Deltas publishes a delta CRL (RFC 5280 §5.2.4) beside each partition's
	// CRL, BASE/crl/{ca}-{n}-delta.crl (BASE/crl/{ca}-delta.crl for the
	// whole-CA one), named by the complete CRL's freshestCRL. Complete CRLs
	// are then regenerated every regenerateEvery only, deltas also seconds
	// after a revocation: relying parties that hold a complete CRL fetch
	// the small delta.
	Deltas bool `yaml:"deltas"`
}

// PartitionCount is a partition count as the configuration gives it: a
// whole number from 1 to MaxPartitions. Decoding any other value (0, a
// negative or absurd count, a fraction) is an error naming the range; a
// count left out is 0 in Go, which Validate turns into 1.
type PartitionCount int

// UnmarshalText accepts 1 … MaxPartitions.
func (p *PartitionCount) UnmarshalText(b []byte) error {
	n, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil || n < 1 || n > MaxPartitions {
		return fmt.Errorf("%w: partitions %q: want a whole number from 1 to %d", ErrConfig, b, MaxPartitions)
	}
	*p = PartitionCount(n)
	return nil
}

// Settings is a validated Config.
type Settings struct {
	Validity               time.Duration
	RegenerateEvery        time.Duration
	TriggerDelay           time.Duration
	Partitions             int
	MaxEntriesPerPartition int
	BaseURL                string
	LintSampleEntries      int
	MaxAge                 time.Duration
	Deltas                 bool
}

// ErrConfig marks an invalid CRL configuration.
var ErrConfig = errors.New("invalid CRL configuration")

// Validate checks c and returns the runtime settings, filling defaults:
// Validity 7 days, RegenerateEvery Validity/4 (at most 6 hours),
// TriggerDelay 5 s, Partitions 1, MaxEntriesPerPartition 100,000,
// MaxAge 5 min, LintSampleEntries 10,000.
func (c Config) Validate() (Settings, error) {
	s := Settings{
		Validity: c.Validity, RegenerateEvery: c.RegenerateEvery, TriggerDelay: c.TriggerDelay,
		Partitions: int(c.Partitions), MaxEntriesPerPartition: c.MaxEntriesPerPartition,
		BaseURL: strings.TrimRight(c.BaseURL, "/"), LintSampleEntries: c.LintSampleEntries,
		MaxAge: c.MaxAge, Deltas: c.Deltas,
	}
	if s.Validity == 0 {
		s.Validity = 7 * 24 * time.Hour
	}
	if s.RegenerateEvery == 0 {
		s.RegenerateEvery = min(s.Validity/4, 6*time.Hour)
	}
	if s.TriggerDelay == 0 {
		s.TriggerDelay = 5 * time.Second
	}
	s.Partitions = cmp.Or(s.Partitions, 1)
	s.MaxEntriesPerPartition = cmp.Or(s.MaxEntriesPerPartition, 100_000)
	if s.MaxAge == 0 {
		s.MaxAge = 5 * time.Minute
	}
	s.LintSampleEntries = cmp.Or(s.LintSampleEntries, 10_000)
	switch {
	case s.Validity < time.Hour || s.Validity > 366*24*time.Hour:
		return Settings{}, fmt.Errorf("%w: validity %s outside [1h, 366d]", ErrConfig, s.Validity)
	case s.RegenerateEvery < time.Second || s.RegenerateEvery > s.Validity/2:
		return Settings{}, fmt.Errorf("%w: regenerateEvery %s must be in [1s, validity/2]", ErrConfig, s.RegenerateEvery)
	case s.TriggerDelay < 0 || s.TriggerDelay > s.RegenerateEvery:
		return Settings{}, fmt.Errorf("%w: triggerDelay %s must be in [0, regenerateEvery]", ErrConfig, s.TriggerDelay)
	case s.Partitions < 1 || s.Partitions > MaxPartitions:
		return Settings{}, fmt.Errorf("%w: partitions %d outside [1, %d]", ErrConfig, s.Partitions, MaxPartitions)
	case s.MaxEntriesPerPartition < 1:
		return Settings{}, fmt.Errorf("%w: maxEntriesPerPartition must be positive", ErrConfig)
	case s.MaxAge < 0:
		return Settings{}, fmt.Errorf("%w: maxAge must not be negative", ErrConfig)
	case s.LintSampleEntries < 1:
		return Settings{}, fmt.Errorf("%w: lintSampleEntries must be positive", ErrConfig)
	}
	u, err := url.Parse(s.BaseURL)
	if err != nil || u.Scheme != "http" || u.Host == "" || u.RawQuery != "" || u.Fragment != "" {
		// RFC 5280 §4.2.1.13 and common practice: CRLs are fetched over plain
		// HTTP (they are signed; https would create a validation loop).
		return Settings{}, fmt.Errorf("%w: baseURL %q must be an absolute http:// URL", ErrConfig, c.BaseURL)
	}
	return s, nil
}

// ForIssuer returns the settings of one CA's CRLs. The root's CRL has one
// partition and no delta. An issuing CA publishes the configured
// partitions, and more when its certificates name more (used, the highest
// partition they name: the count was lowered since): every partition a
// certificate names stays published.
func (s Settings) ForIssuer(root bool, used int) Settings {
	if root {
		s.Partitions, s.Deltas = 1, false
		return s
	}
	s.Partitions = max(s.Partitions, used)
	return s
}
