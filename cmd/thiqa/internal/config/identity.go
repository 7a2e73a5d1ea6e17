package config

import (
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/thiqa/thiqa/internal/pin"
)

// IdentityConfig configures the digital-ID service: the OpenID Connect
// provider at publicBaseURL (issuer) through which citizens log in to
// portals with their citizen-auth certificate. It runs only with the ca
// section enabled.
type IdentityConfig struct {
	// Key is the pkcs11: URI of the key that signs ID tokens and access
	// tokens; `thiqa init` creates it. Empty disables the service.
	Key string `yaml:"key"`
	// Issuer is the provider's URL (the iss claim; endpoints hang below
	// it). Empty means publicBaseURL; set it to the https URL when
	// publicBaseURL stays http for CRLs and OCSP.
	Issuer string `yaml:"issuer"`
	// KeyType is ec-p256 (ES256, default), ec-p384 (ES384) or rsa-2048 /
	// rsa-3072 (PS256).
	KeyType string `yaml:"keyType"`
	// PairwiseSecretFile holds the per-deployment secret that keys pairwise
	// subject identifiers; `thiqa init` creates it. Losing it changes every
	// citizen's sub at every portal.
	PairwiseSecretFile string `yaml:"pairwiseSecretFile"`
	// CitizenCA names the issuing CA (ca.issuers[].name) whose citizen-auth
	// certificates may log in by mutual TLS.
	CitizenCA string `yaml:"citizenCA"`
	// CodeLifetime bounds an authorization code (default 60s, at most 10m).
	CodeLifetime time.Duration `yaml:"codeLifetime"`
	// LoginLifetime bounds a mobile login awaiting approval (default 5m).
	LoginLifetime time.Duration `yaml:"loginLifetime"`
	// IDTokenLifetime and AccessTokenLifetime (default 10m each).
	IDTokenLifetime     time.Duration `yaml:"idTokenLifetime"`
	AccessTokenLifetime time.Duration `yaml:"accessTokenLifetime"`
	// MaxAssertionLifetime bounds a client assertion's exp (default 5m).
	MaxAssertionLifetime time.Duration `yaml:"maxAssertionLifetime"`
	// ACR is the acr claim (default the eIDAS LoA high URI).
	ACR string `yaml:"acr"`
	// PIN is the argon2id cost of login PINs (mobile ID). Each remote
	// login computes one hash: this bounds the login rate per core.
	PIN PINHashConfig `yaml:"pin"`
	// PINPolicy is the policy of login PINs and their activation codes.
	PINPolicy PINPolicyConfig `yaml:"pinPolicy"`
}

// PINHashConfig is the argon2id cost of PIN hashing.
type PINHashConfig struct {
	// Time is the number of passes (default 2).
	Time uint32 `yaml:"time"`
	// MemoryKiB is the memory per hash (default 19456, OWASP's 19 MiB).
	MemoryKiB uint32 `yaml:"memoryKiB"`
	// MaxConcurrent bounds hashes computed at once (default 2).
	MaxConcurrent int `yaml:"maxConcurrent"`
}

// DefaultIdentityConfig returns the digital-ID settings of a local setup.
func DefaultIdentityConfig() IdentityConfig {
	p := pin.DefaultParams()
	return IdentityConfig{
		Key:                  "pkcs11:token=thiqa;object=oidc-token-signer",
		KeyType:              "ec-p256",
		PairwiseSecretFile:   "secrets/oidc-pairwise.key",
		CitizenCA:            "citizen",
		CodeLifetime:         60 * time.Second,
		LoginLifetime:        5 * time.Minute,
		IDTokenLifetime:      10 * time.Minute,
		AccessTokenLifetime:  10 * time.Minute,
		MaxAssertionLifetime: 5 * time.Minute,
		PIN:                  PINHashConfig{Time: p.Time, MemoryKiB: p.MemoryKiB, MaxConcurrent: p.MaxConcurrent},
		PINPolicy:            DefaultPINPolicy(),
	}
}

// Enabled reports whether the digital-ID service is configured; it runs
// only where the ca section is enabled too.
func (c IdentityConfig) Enabled() bool { return c.Key != "" }

// IssuerOr returns the issuer URL, publicBaseURL when none is set.
func (c IdentityConfig) IssuerOr(publicBaseURL string) string {
	if c.Issuer != "" {
		return c.Issuer
	}
	return publicBaseURL
}

// PINParams returns the login PIN policy with the configured cost.
func (c IdentityConfig) PINParams() pin.Params {
	p := c.PINPolicy.Apply(pin.DefaultParams())
	if c.PIN.Time != 0 {
		p.Time = c.PIN.Time
	}
	if c.PIN.MemoryKiB != 0 {
		p.MemoryKiB = c.PIN.MemoryKiB
	}
	if c.PIN.MaxConcurrent != 0 {
		p.MaxConcurrent = c.PIN.MaxConcurrent
	}
	return p
}

// validateIdentity checks the identity section against the CA section.
func validateIdentity(c IdentityConfig, ca CAConfig) error {
	if !c.Enabled() || !ca.Enabled() {
		return nil // without a CA there is no one to log in
	}
	var errs []string
	bad := func(key, format string, args ...any) {
		errs = append(errs, "identity."+key+": "+fmt.Sprintf(format, args...))
	}
	if !strings.HasPrefix(c.Key, "pkcs11:") {
		bad("key", "want a pkcs11: URI, got %q", c.Key)
	}
	switch c.KeyType {
	case "", "ec-p256", "ec-p384", "rsa-2048", "rsa-3072":
	default:
		bad("keyType", "want ec-p256, ec-p384, rsa-2048 or rsa-3072, got %q", c.KeyType)
	}
	if c.Issuer != "" {
		u, err := url.Parse(c.Issuer)
		if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || u.RawQuery != "" || u.Fragment != "" || strings.HasSuffix(c.Issuer, "/") {
			bad("issuer", "want an absolute http(s) URL without query, fragment or trailing slash, got %q", c.Issuer)
		}
	}
	if c.PairwiseSecretFile == "" {
		bad("pairwiseSecretFile", "is required")
	}
	found := false
	for _, is := range ca.Issuers {
		found = found || is.Name == c.CitizenCA
	}
	if !found {
		bad("citizenCA", "no issuing CA named %q", c.CitizenCA)
	}
	for _, d := range []struct {
		key      string
		v, limit time.Duration
	}{
		{"codeLifetime", c.CodeLifetime, 10 * time.Minute},
		{"loginLifetime", c.LoginLifetime, time.Hour},
		{"idTokenLifetime", c.IDTokenLifetime, 24 * time.Hour},
		{"accessTokenLifetime", c.AccessTokenLifetime, 24 * time.Hour},
		{"maxAssertionLifetime", c.MaxAssertionLifetime, time.Hour},
	} {
		if d.v < 0 || d.v > d.limit {
			bad(d.key, "must be between 0 (default) and %s, got %s", d.limit, d.v)
		}
	}
	p := c.PINParams()
	if p.Time < 1 || p.MemoryKiB < 8 || p.MaxConcurrent < 0 {
		bad("pin", "argon2id time must be at least 1 and memoryKiB at least 8")
	}
	for _, e := range c.PINPolicy.validate("pinPolicy") {
		errs = append(errs, "identity."+e)
	}
	if len(errs) > 0 {
		return fmt.Errorf("%s", strings.Join(errs, "; "))
	}
	return nil
}
