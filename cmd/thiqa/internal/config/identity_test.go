package config

import (
	"strings"
	"testing"
	"time"
)

func TestIdentityConfig(t *testing.T) {
	def := Default(t.TempDir())
	if err := def.Validate(); err != nil || !def.Identity.Enabled() {
		t.Fatalf("default: %v", err)
	}
	if p := def.Identity.PINParams(); p.MaxFailures != 5 || p.Time < 1 {
		t.Fatalf("PIN params %+v", p)
	}
	bad := map[string]func(c *Config){
		"identity.key":          func(c *Config) { c.Identity.Key = "oidc" },
		"identity.keyType":      func(c *Config) { c.Identity.KeyType = "rsa-1024" },
		"identity.citizenCA":    func(c *Config) { c.Identity.CitizenCA = "nobody" },
		"identity.codeLifetime": func(c *Config) { c.Identity.CodeLifetime = time.Hour },
		"identity.pairwise":     func(c *Config) { c.Identity.PairwiseSecretFile = "" },
		"identity.issuer":       func(c *Config) { c.Identity.Issuer = "https://id.example.om/" },
	}
	for want, edit := range bad {
		c := Default(t.TempDir())
		edit(c)
		if err := c.Validate(); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: Validate() = %v", want, err)
		}
	}
	off := Default(t.TempDir())
	off.Identity = IdentityConfig{}
	if err := off.Validate(); err != nil || off.Identity.Enabled() {
		t.Fatalf("disabled: %v", err)
	}
}
