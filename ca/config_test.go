package ca

import (
	"slices"
	"strings"
	"testing"

	"github.com/thiqa/thiqa/policies"
)

// TestConfigValidate: the default ca section validates; an offline root
// carries no key; issuers need a root; names, keys and types are checked.
func TestConfigValidate(t *testing.T) {
	def := DefaultConfig()
	if err := def.Validate(); err != nil || !def.Enabled() || !def.IsIssuer("tsa") || def.IsIssuer("root") {
		t.Fatalf("default: %v", err)
	}
	if (Config{}).Validate() != nil || (Config{}).Enabled() || (Config{}).IsIssuer("tsa") {
		t.Fatal("an empty section is no CA")
	}
	offline := DefaultConfig()
	offline.Root = KeyConfig{Name: "root", Offline: true}
	if err := offline.Validate(); err != nil || !offline.Enabled() {
		t.Fatalf("offline root: %v", err)
	}
	for want, edit := range map[string]func(c *Config){
		"ca.root.key: issuers are configured": func(c *Config) { c.Root = KeyConfig{} },
		"ca.root.key: must be empty":          func(c *Config) { c.Root.Offline = true },
		"generations":                         func(c *Config) { c.Issuers[0].Name = "citizen_2" },
		"ca.issuers[1].name":                  func(c *Config) { c.Issuers[1].Name = "citizen" },
		"ca.root.keyType":                     func(c *Config) { c.Root.KeyType = "rsa-2048" },
		"ca.root.validity":                    func(c *Config) { c.Root.Validity = "forever" },
		"ca.subjectKeyType":                   func(c *Config) { c.SubjectKeyType = "dsa" },
		"ca.issuers: at least one":            func(c *Config) { c.Issuers = nil },
		// The profiles' deployment values are checked with the section, not
		// first when the CA is opened.
		"ca.profiles: profile \"citizen-signing\": object identifier": func(c *Config) { c.Profiles.CAPolicyOID = "not-an-oid" },
		"ca.profiles: cryptoPeriods: unknown":                         func(c *Config) { c.Profiles.CryptoPeriods = map[string]string{"no-such-profile": "1000d"} },
		"ca.profiles: profile \"citizen-signing\": cryptoPeriod":      func(c *Config) { c.Profiles.CryptoPeriods = map[string]string{"citizen-signing": "1d"} },
		"ca.profiles: profile \"citizen-signing\": qcStatements":      func(c *Config) { c.Profiles.PDSURL = "http://pki.example/pds.pdf" },
		"ca.profiles: countries: unknown":                             func(c *Config) { c.Profiles.Countries = map[string][]string{"web": {"OM"}} },
		"ca.profiles: countries: citizen-auth: list at least one":     func(c *Config) { c.Profiles.Countries = map[string][]string{"citizen-auth": {}} },
		"ca.profiles: profile \"citizen-auth\": subject: country \"om\"": func(c *Config) {
			c.Profiles.Countries = map[string][]string{"citizen-auth": {"om"}}
		},
	} {
		c := DefaultConfig()
		edit(&c)
		if err := c.Validate(); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: Validate() = %v", want, err)
		}
	}
	// A natural-person profile may list countries without the
	// deployment's own: the operator says so.
	listed := DefaultConfig()
	listed.Profiles.Countries = map[string][]string{"citizen-auth": {"AE"}, "organisation-seal": {"OM"}}
	if err := listed.Validate(); err != nil {
		t.Fatalf("ca.profiles.countries: %v", err)
	}
	if got := def.IssuerNames(); !slices.Equal(got, []string{"citizen", "organisation", "tsa"}) || len((Config{}).IssuerNames()) != 0 {
		t.Fatalf("IssuerNames = %v", got)
	}
	if (Config{}).SubjectKeyTypeOrDefault() != "ec-p256" || (Config{SubjectKeyType: "rsa-3072"}).SubjectKeyTypeOrDefault() != "rsa-3072" {
		t.Fatal("SubjectKeyTypeOrDefault")
	}
	if kt := (KeyConfig{}).KeyTypeOrDefault(); kt != "ec-p384" {
		t.Fatalf("default CA key type %q", kt)
	}
}

// Country is the citizen CA's subject C, else the root's; none without a CA.
func TestConfigCountry(t *testing.T) {
	c := DefaultConfig()
	if got := c.Country(); got != "OM" {
		t.Fatalf("default: %q", got)
	}
	for i := range c.Issuers {
		if c.Issuers[i].Name == policies.IssuerCitizen {
			c.Issuers[i].Country = "AE"
		}
	}
	if got := c.Country(); got != "AE" {
		t.Fatalf("citizen CA of AE: %q", got)
	}
	c.Issuers = nil
	c.Root.Country = "QA"
	if got := c.Country(); got != "QA" {
		t.Fatalf("root only: %q", got)
	}
	if got := (Config{}).Country(); got != "" {
		t.Fatalf("no CA: %q", got)
	}
	// An offline root's subject is its certificate's, not the section's
	// (not validated there): a stray value must not stop the server.
	c.Root = KeyConfig{Name: "root", Offline: true, Country: "om"}
	c.Issuers = []KeyConfig{{Name: policies.IssuerOrganisation, Country: "OM"}}
	if got := c.Country(); got != "" {
		t.Fatalf("offline root, no citizen CA: %q", got)
	}
}
