package config

import (
	"strings"
	"testing"

	"github.com/thiqa/thiqa/ca"
	"github.com/thiqa/thiqa/identity"
	"github.com/thiqa/thiqa/timestamp"
)

// TestSectionsAgainstCA: the checks across sections. The TSA unit's and
// the citizens' issuing CAs must be issuers of the ca section; without a
// CA the identity section is not checked (no one to log in) and a TSA is
// refused; a section's own problems surface in Validate's error.
func TestSectionsAgainstCA(t *testing.T) {
	def := Default(t.TempDir())
	if err := def.Validate(); err != nil {
		t.Fatalf("default: %v", err)
	}
	bad := map[string]func(c *Config){
		"tsa.ca: \"citizen2\" is":       func(c *Config) { c.TSA.CA = "citizen2" },
		"tsa.ca: \"tsa\" is":            func(c *Config) { c.CA = ca.Config{} },
		"identity.citizenCA":            func(c *Config) { c.Identity.CitizenCA = "nobody" },
		"tsa.clock.source":              func(c *Config) { c.TSA.Timestamp.Clock.Source = "sundial" },
		"identity.key":                  func(c *Config) { c.Identity.Key = "oidc" },
		"revocation.pollEvery":          func(c *Config) { c.Revocation.PollEvery = 1 },
		"signing.maxBatchDocuments":     func(c *Config) { c.Signing.MaxBatchDocuments = -1 },
		"ca.subjectKeyType":             func(c *Config) { c.CA.SubjectKeyType = "dsa" },
		"verify.burst":                  func(c *Config) { c.Verify.Burst = -1 },
		"invalid configuration: listen": func(c *Config) { c.Listen = "x" },
	}
	for want, edit := range bad {
		c := Default(t.TempDir())
		edit(c)
		if err := c.Validate(); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: Validate() = %v", want, err)
		}
	}
	noCA := Default(t.TempDir())
	noCA.CA, noCA.TSA = ca.Config{}, timestamp.ServiceConfig{}
	noCA.Identity.CitizenCA = "nobody"
	if err := noCA.Validate(); err != nil {
		t.Fatalf("no CA, no TSA: %v", err)
	}
	off := Default(t.TempDir())
	off.TSA, off.Identity = timestamp.ServiceConfig{}, identity.ProviderConfig{}
	if err := off.Validate(); err != nil || off.Identity.Enabled() {
		t.Fatalf("no TSA, no identity: %v", err)
	}
	for _, src := range []string{timestamp.ClockChrony, timestamp.ClockKernel, timestamp.ClockStaticOutOfSync} {
		c := Default(t.TempDir())
		c.TSA.Timestamp.Clock.Source = src
		if err := c.Validate(); err != nil {
			t.Errorf("source %s: %v", src, err)
		}
	}
}
