package identity

import (
	"errors"
	"fmt"
	"math"
	"net/url"
	"strings"
	"time"

	"github.com/thiqa/thiqa/internal/pin"
)

// ProviderConfig is the serialisable configuration of the digital-ID
// service (thiqa.yaml's identity section): the OpenID Connect provider at
// publicBaseURL (issuer) through which citizens log in to portals with
// their citizen-auth certificate. It runs only with the ca section
// enabled. Apply turns it into a Config.
type ProviderConfig struct {
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
	PIN pin.HashConfig `yaml:"pin"`
	// PINPolicy is the policy of login PINs and their activation codes.
	PINPolicy pin.PolicyConfig `yaml:"pinPolicy"`
	// Mobile configures the phone side of mobile ID.
	Mobile MobileConfig `yaml:"mobile"`
	// RateLimit bounds, per client IP, the mobile logins started and the
	// token requests (the client as verify.trustedProxies resolves it).
	RateLimit RateLimitConfig `yaml:"rateLimit"`
}

// MobileConfig is identity.mobile.
type MobileConfig struct {
	// NumberMatching: the phone's list of pending logins does not show
	// their verification codes; the citizen types the code the browser
	// shows to approve, so that only the login in front of them can be
	// approved (Config.NumberMatching). Off by default.
	NumberMatching bool `yaml:"numberMatching"`
}

// RateLimitConfig is identity.rateLimit: a token bucket per client IP
// for each kind of request.
type RateLimitConfig struct {
	// Login bounds the mobile logins one address starts (the forms of
	// /oidc/authorize and /csc/v2/oauth2/authorize with a civil number).
	Login Rate `yaml:"login"`
	// Token bounds the requests one address sends to the token endpoints
	// (/oidc/token and /csc/v2/oauth2/token).
	Token Rate `yaml:"token"`
}

// Rate is a per-client-IP token bucket: Burst requests at once, and
// RatePerSecond on average; zero values mean the defaults.
type Rate struct {
	RatePerSecond float64 `yaml:"ratePerSecond"`
	Burst         int     `yaml:"burst"`
}

// The default per-client-IP limits: a login start every second on average
// (30 at once) leaves room for many citizens behind one carrier-grade
// NAT address while a script starting logins for many civil numbers is
// slowed to that pace; a portal's server exchanges codes for all its
// citizens from one address, hence the higher token limit.
const (
	DefaultLoginRate  = 1
	DefaultLoginBurst = 30
	DefaultTokenRate  = 100
	DefaultTokenBurst = 500
)

// Upper bounds of the login PINs' argon2id cost (identity.pin), those of
// signing PINs.
const (
	maxBurst        = 100_000
	maxPINTime      = 16
	maxPINMemoryKiB = 1 << 20
)

// DefaultProviderConfig returns the digital-ID settings of a local setup.
func DefaultProviderConfig() ProviderConfig {
	return ProviderConfig{
		Key:                  "pkcs11:token=thiqa;object=oidc-token-signer",
		KeyType:              "ec-p256",
		PairwiseSecretFile:   "secrets/oidc-pairwise.key",
		CitizenCA:            "citizen",
		CodeLifetime:         60 * time.Second,
		LoginLifetime:        5 * time.Minute,
		IDTokenLifetime:      10 * time.Minute,
		AccessTokenLifetime:  10 * time.Minute,
		MaxAssertionLifetime: 5 * time.Minute,
		PIN:                  pin.DefaultHash(),
		PINPolicy:            pin.DefaultPolicy(),
		RateLimit: RateLimitConfig{
			Login: Rate{RatePerSecond: DefaultLoginRate, Burst: DefaultLoginBurst},
			Token: Rate{RatePerSecond: DefaultTokenRate, Burst: DefaultTokenBurst},
		},
	}
}

// Enabled reports whether the digital-ID service is configured; it runs
// only where the ca section is enabled too.
func (c ProviderConfig) Enabled() bool { return c.Key != "" }

// IssuerOr returns the issuer URL, publicBaseURL when none is set.
func (c ProviderConfig) IssuerOr(publicBaseURL string) string {
	if c.Issuer != "" {
		return c.Issuer
	}
	return publicBaseURL
}

// CSCOAuthBase returns the base URI of the CSC API v2 authorization
// server (the "oauth2" member of /csc/v2/info) under the issuer
// (publicBaseURL when none is set): its access tokens name it as their
// audience, the signing service they are for.
func (c ProviderConfig) CSCOAuthBase(publicBaseURL string) string {
	return c.IssuerOr(publicBaseURL) + PathCSC
}

// KeyTypeOrDefault returns the type of the token-signing key: KeyType,
// ec-p256 when it is empty.
func (c ProviderConfig) KeyTypeOrDefault() string {
	if c.KeyType == "" {
		return "ec-p256"
	}
	return c.KeyType
}

// PINParams returns the login PIN policy with the configured cost.
func (c ProviderConfig) PINParams() pin.Params {
	return c.PIN.Apply(c.PINPolicy.Apply(pin.DefaultParams()))
}

// Validate checks the section of a deployment whose CA runs; isIssuer
// reports whether a name is one of its issuing CAs (citizenCA must be).
func (c ProviderConfig) Validate(isIssuer func(name string) bool) error {
	if !c.Enabled() {
		return nil
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
	if !isIssuer(c.CitizenCA) {
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
	// Every login computes one hash: the bounds of signing.pinTime and
	// signing.pinMemoryKiB keep an absurd cost from exhausting the server.
	if p.Time > maxPINTime {
		bad("pin", "argon2id time at most %d, got %d", maxPINTime, p.Time)
	}
	if p.MemoryKiB > maxPINMemoryKiB {
		bad("pin", "argon2id memoryKiB at most %d (1 GiB), got %d", maxPINMemoryKiB, p.MemoryKiB)
	}
	for _, r := range []struct {
		key string
		v   Rate
	}{{"rateLimit.login", c.RateLimit.Login}, {"rateLimit.token", c.RateLimit.Token}} {
		if r.v.RatePerSecond < 0 || math.IsNaN(r.v.RatePerSecond) || math.IsInf(r.v.RatePerSecond, 0) {
			// NaN would refuse every client once its burst is spent,
			// infinity would lift the limit.
			bad(r.key+".ratePerSecond", "want a finite number, 0 (default) or more, got %v", r.v.RatePerSecond)
		}
		if r.v.Burst < 0 || r.v.Burst > maxBurst {
			bad(r.key+".burst", "want 0 (default) to %d, got %d", maxBurst, r.v.Burst)
		}
	}
	if err := c.PINPolicy.Validate("identity.pinPolicy"); err != nil {
		errs = append(errs, err.Error())
	}
	if len(errs) > 0 {
		return errors.New(strings.Join(errs, "; "))
	}
	return nil
}
