package identity

import (
	"math"
	"strings"
	"testing"
	"time"

	"github.com/thiqa/thiqa/internal/pin"
)

// TestProviderConfig: the default section validates against a CA issuing
// for citizens; each bad value is refused naming its key; an empty
// section is the service turned off.
func TestProviderConfig(t *testing.T) {
	isIssuer := func(name string) bool { return name == "citizen" }
	def := DefaultProviderConfig()
	if err := def.Validate(isIssuer); err != nil || !def.Enabled() {
		t.Fatalf("default: %v", err)
	}
	if def.KeyTypeOrDefault() != "ec-p256" || (ProviderConfig{}).KeyTypeOrDefault() != "ec-p256" || (ProviderConfig{KeyType: "rsa-3072"}).KeyTypeOrDefault() != "rsa-3072" {
		t.Fatal("KeyTypeOrDefault")
	}
	if got := def.CSCOAuthBase("http://thiqa.example"); got != "http://thiqa.example/csc/v2" {
		t.Fatalf("CSCOAuthBase = %q", got)
	}
	if got := (ProviderConfig{Issuer: "https://id.example.om"}).CSCOAuthBase("http://thiqa.example"); got != "https://id.example.om/csc/v2" {
		t.Fatalf("CSCOAuthBase with an issuer = %q", got)
	}
	if p := def.PINParams(); p.MaxFailures != 5 || p.Time < 1 {
		t.Fatalf("PIN params %+v", p)
	}
	bad := map[string]func(c *ProviderConfig){
		"identity.key":          func(c *ProviderConfig) { c.Key = "oidc" },
		"identity.keyType":      func(c *ProviderConfig) { c.KeyType = "rsa-1024" },
		"identity.citizenCA":    func(c *ProviderConfig) { c.CitizenCA = "nobody" },
		"identity.codeLifetime": func(c *ProviderConfig) { c.CodeLifetime = time.Hour },
		"identity.pairwise":     func(c *ProviderConfig) { c.PairwiseSecretFile = "" },
		"identity.issuer":       func(c *ProviderConfig) { c.Issuer = "https://id.example.om/" },
		"identity.pin:":         func(c *ProviderConfig) { c.PIN.MemoryKiB = 4 },
		// Each login hashes a PIN: 4 TiB or 4 billion passes would stop
		// the server at the first one.
		"identity.pin: argon2id memoryKiB at most": func(c *ProviderConfig) { c.PIN.MemoryKiB = 1<<32 - 1 },
		"identity.pin: argon2id time at most":      func(c *ProviderConfig) { c.PIN.Time = 1<<32 - 1 },
		"identity.pinPolicy.max":                   func(c *ProviderConfig) { c.PINPolicy.MaxFailures = 50 },
		"identity.rateLimit.login.ratePerSecond":   func(c *ProviderConfig) { c.RateLimit.Login.RatePerSecond = -1 },
		"identity.rateLimit.token.ratePerSecond":   func(c *ProviderConfig) { c.RateLimit.Token.RatePerSecond = math.Inf(1) },
		"identity.rateLimit.token.burst":           func(c *ProviderConfig) { c.RateLimit.Token.Burst = -1 },
		"identity.rateLimit.login.burst":           func(c *ProviderConfig) { c.RateLimit.Login.Burst = 1 << 30 },
	}
	for want, edit := range bad {
		c := DefaultProviderConfig()
		edit(&c)
		if err := c.Validate(isIssuer); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: Validate() = %v", want, err)
		}
	}
	off := ProviderConfig{}
	if err := off.Validate(isIssuer); err != nil || off.Enabled() {
		t.Fatalf("disabled: %v", err)
	}
	if got := def.IssuerOr("https://pki.example.om"); got != "https://pki.example.om" {
		t.Fatalf("IssuerOr = %q", got)
	}
}

// TestProviderConfigApply: the section gives the provider its issuer
// (publicBaseURL when it names none), lifetimes and acr, and keeps the
// rest of the Config.
func TestProviderConfigApply(t *testing.T) {
	c := DefaultProviderConfig()
	c.ACR = ACRSubstantial
	got := c.Apply(Config{KeyID: "k"}, "https://thiqa.example")
	if got.Issuer != "https://thiqa.example" || got.KeyID != "k" || got.ACR != ACRSubstantial ||
		got.CodeLifetime != c.CodeLifetime || got.LoginLifetime != c.LoginLifetime || got.IDTokenLifetime != c.IDTokenLifetime ||
		got.AccessTokenLifetime != c.AccessTokenLifetime || got.MaxAssertionLifetime != c.MaxAssertionLifetime {
		t.Fatalf("Apply: %+v", got)
	}
	c.Issuer = "https://id.thiqa.example"
	if got := c.Apply(Config{}, "http://thiqa.example"); got.Issuer != c.Issuer {
		t.Fatalf("issuer %q, want the section's", got.Issuer)
	}
	if got.NumberMatching || got.LoginRate != DefaultLoginRate || got.LoginBurst != DefaultLoginBurst || got.TokenRate != DefaultTokenRate || got.TokenBurst != DefaultTokenBurst {
		t.Fatalf("defaults: %+v", got)
	}
	c.Mobile.NumberMatching = true
	c.RateLimit = RateLimitConfig{Login: Rate{RatePerSecond: 0.5, Burst: 3}, Token: Rate{RatePerSecond: 7, Burst: 9}}
	if got := c.Apply(Config{}, ""); !got.NumberMatching || got.LoginRate != 0.5 || got.LoginBurst != 3 || got.TokenRate != 7 || got.TokenBurst != 9 {
		t.Fatalf("identity.mobile and identity.rateLimit not applied: %+v", got)
	}
}

// TestProviderRateLimitsChecked: New refuses rate limits Validate would.
func TestProviderRateLimitsChecked(t *testing.T) {
	e := newEnv(t, false)
	for _, mod := range []func(*Config){
		func(c *Config) { c.LoginRate = math.NaN() },
		func(c *Config) { c.TokenBurst = -1 },
	} {
		cfg := e.p.cfg
		cfg.Registerer = nil
		mod(&cfg)
		if _, err := New(cfg); err == nil {
			t.Fatalf("New accepted %+v", cfg)
		}
	}
}

// enrolmentStore is a store for an enrolment whose methods are never called.
type enrolmentStore struct {
	Credentials
	MobileIDStore
	pin.Store
}

// TestProviderConfigEnrolment: an enrolment reads and writes the one store
// it is given, checks with the status and audits with the auditor given,
// and sets login PINs at the section's cost and policy; parameters the PIN
// manager refuses are an error.
func TestProviderConfigEnrolment(t *testing.T) {
	c := DefaultProviderConfig()
	st, status, log := &enrolmentStore{}, &memStatus{}, &memAudit{}
	e, err := c.Enrolment(st, status, log)
	if err != nil {
		t.Fatal(err)
	}
	if e.Credentials != st || e.Store != st || e.Status != status || e.Audit != log {
		t.Fatalf("Enrolment: %+v", e)
	}
	got, want := e.PINs.Params(), c.PINParams()
	if got.Time != want.Time || got.MemoryKiB != want.MemoryKiB || got.MaxFailures != want.MaxFailures || got.MinLength != want.MinLength || got.MaxLength != want.MaxLength {
		t.Fatalf("PIN params %+v, want %+v", got, want)
	}
	c.PIN.MemoryKiB = 4
	if _, err := c.Enrolment(st, status, log); err == nil {
		t.Fatal("an enrolment with argon2id memory of 4 KiB")
	}
}
