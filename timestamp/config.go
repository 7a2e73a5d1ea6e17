package timestamp

import (
	"cmp"
	"crypto"
	"encoding/asn1"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/thiqa/thiqa/timestamp/tsp"
)

// DefaultMaxRequestBytes is the largest request body accepted (64 KiB).
const DefaultMaxRequestBytes = 64 << 10

// Config is the serialisable TSA configuration.
type Config struct {
	// Policy is the TSA policy OID put in every token; default the ETSI
	// best-practices policy 0.4.0.2023.1.1 (EN 319 421).
	Policy string `yaml:"policy"`
	// AcceptedPolicies are further policy OIDs a request may ask for; the
	// token always carries Policy.
	AcceptedPolicies []string `yaml:"acceptedPolicies"`
	// Accuracy is the declared accuracy of genTime, at most one second;
	// default one second.
	Accuracy time.Duration `yaml:"accuracy"`
	// HashAlgorithms are the accepted message-imprint algorithms, from
	// SHA-256, SHA-384, SHA-512, SHA3-256, SHA3-384, SHA3-512; default all.
	HashAlgorithms []string `yaml:"hashAlgorithms"`
	// Qualified adds the ETSI esi4-qtstStatement-1 statement (EN 319 422).
	Qualified bool `yaml:"qualified"`
	// IncludeChain adds the issuing CA certificates, not only the unit
	// certificate, to tokens whose request sets certReq.
	IncludeChain bool `yaml:"includeChain"`
	// IncludeTSAName puts the unit certificate's subject in TSTInfo.tsa.
	IncludeTSAName bool `yaml:"includeTSAName"`
	// SigningTime adds the CMS signing-time signed attribute.
	SigningTime bool `yaml:"signingTime"`
	// RSAPSS signs with RSASSA-PSS instead of PKCS #1 v1.5 (RSA keys).
	RSAPSS bool `yaml:"rsaPSS"`
	// MaxRequestBytes bounds the request body; default 64 KiB.
	MaxRequestBytes int64 `yaml:"maxRequestBytes"`
	// Clock configures the clock check; see NewClockChecker.
	Clock ClockConfig `yaml:"clock"`
}

// ClockConfig is the serialisable clock-discipline configuration (EN 319 421).
type ClockConfig struct {
	// Source is "chrony" (default: `chronyc -c tracking`) or "static"
	// (development only: the clock is declared in sync).
	Source string `yaml:"source"`
	// ChronycPath is the chronyc program; default "chronyc" on PATH.
	ChronycPath string `yaml:"chronycPath"`
	// MaxError is the largest acceptable clock error bound; default, and
	// at most, the declared accuracy.
	MaxError time.Duration `yaml:"maxError"`
	// Interval between checks; default 1 s.
	Interval time.Duration `yaml:"interval"`
	// MaxAge after which an answer no longer counts; default 5 s.
	MaxAge time.Duration `yaml:"maxAge"`
}

// NewClockChecker builds the cached clock checker the configuration names,
// for Options.Clock.
func (c Config) NewClockChecker() (*CachedChecker, error) {
	s, err := c.validate()
	if err != nil {
		return nil, err
	}
	cc := c.Clock
	cc.MaxError = cmp.Or(cc.MaxError, s.accuracy)
	if cc.MaxError < 0 || cc.MaxError > s.accuracy {
		return nil, fmt.Errorf("timestamp config: clock.maxError %v must be positive and within the declared accuracy %v", cc.MaxError, s.accuracy)
	}
	cc.Interval = cmp.Or(cc.Interval, time.Second)
	if cc.MaxAge == 0 {
		cc.MaxAge = 5 * cc.Interval
	}
	var inner ClockChecker
	switch cc.Source {
	case "", "chrony":
		inner = ChronyChecker{Path: cc.ChronycPath, MaxError: cc.MaxError}
	case "static":
		inner = NewStaticChecker(true)
	default:
		return nil, fmt.Errorf("timestamp config: clock.source %q is not chrony or static", cc.Source)
	}
	return NewCachedChecker(inner, cc.Interval, cc.MaxAge)
}

// settings is the validated form of Config.
type settings struct {
	policy          asn1.ObjectIdentifier
	accepted        []asn1.ObjectIdentifier
	accuracy        time.Duration
	hashes          map[crypto.Hash]bool
	qualified       bool
	includeChain    bool
	includeTSAName  bool
	signingTime     bool
	rsaPSS          bool
	maxRequestBytes int64
}

var hashNames = map[string]crypto.Hash{
	"SHA-256": crypto.SHA256, "SHA-384": crypto.SHA384, "SHA-512": crypto.SHA512,
	"SHA3-256": crypto.SHA3_256, "SHA3-384": crypto.SHA3_384, "SHA3-512": crypto.SHA3_512,
}

func parseOID(s string) (asn1.ObjectIdentifier, error) {
	parts := strings.Split(s, ".")
	if len(parts) < 2 {
		return nil, fmt.Errorf("%q is not a dotted OID", s)
	}
	oid := make(asn1.ObjectIdentifier, len(parts))
	for i, p := range parts {
		n, err := strconv.Atoi(p)
		if err != nil || n < 0 || (i == 0 && n > 2) {
			return nil, fmt.Errorf("%q is not a dotted OID", s)
		}
		oid[i] = n
	}
	if oid[0] < 2 && oid[1] > 39 {
		// X.660: under arcs 0 and 1 the second arc is below 40; DER
		// cannot encode anything else, so no token could carry it.
		return nil, fmt.Errorf("%q is not an OID: under arc %d the second arc is at most 39", s, oid[0])
	}
	return oid, nil
}

func (c Config) validate() (*settings, error) {
	s := &settings{
		accuracy: c.Accuracy, qualified: c.Qualified, includeChain: c.IncludeChain,
		includeTSAName: c.IncludeTSAName, signingTime: c.SigningTime, rsaPSS: c.RSAPSS,
		maxRequestBytes: c.MaxRequestBytes, hashes: map[crypto.Hash]bool{},
	}
	var err error
	if c.Policy == "" {
		s.policy = tsp.OIDETSIBestPracticesPolicy
	} else if s.policy, err = parseOID(c.Policy); err != nil {
		return nil, fmt.Errorf("timestamp config: policy: %w", err)
	}
	s.accepted = append(s.accepted, s.policy)
	for _, p := range c.AcceptedPolicies {
		oid, err := parseOID(p)
		if err != nil {
			return nil, fmt.Errorf("timestamp config: acceptedPolicies: %w", err)
		}
		s.accepted = append(s.accepted, oid)
	}
	s.accuracy = cmp.Or(s.accuracy, time.Second)
	if s.accuracy < time.Microsecond || s.accuracy > time.Second || s.accuracy%time.Microsecond != 0 {
		return nil, fmt.Errorf("timestamp config: accuracy %v must be whole microseconds between 1µs and 1s (EN 319 421)", s.accuracy)
	}
	names := c.HashAlgorithms
	if len(names) == 0 {
		names = []string{"SHA-256", "SHA-384", "SHA-512", "SHA3-256", "SHA3-384", "SHA3-512"}
	}
	for _, n := range names {
		h, ok := hashNames[strings.ToUpper(n)]
		if !ok {
			return nil, fmt.Errorf("timestamp config: hash algorithm %q is not accepted (SHA-256/384/512, SHA3-256/384/512)", n)
		}
		s.hashes[h] = true
	}
	s.maxRequestBytes = cmp.Or(s.maxRequestBytes, DefaultMaxRequestBytes)
	if s.maxRequestBytes < 64 || s.maxRequestBytes > 1<<20 {
		return nil, fmt.Errorf("timestamp config: maxRequestBytes %d out of range", s.maxRequestBytes)
	}
	return s, nil
}
