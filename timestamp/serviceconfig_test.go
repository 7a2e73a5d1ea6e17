package timestamp

import (
	"strings"
	"testing"
	"time"

	"github.com/thiqa/thiqa/policies"
)

// TestServiceConfig: the default tsa section validates; each bad value is
// refused naming its key; every clock source is accepted; an empty
// section is no TSA.
func TestServiceConfig(t *testing.T) {
	isIssuer := func(name string) bool { return name == "tsa" }
	def := DefaultServiceConfig()
	if err := def.Validate(isIssuer); err != nil {
		t.Fatalf("default: %v", err)
	}
	if def.Timestamp.Clock.Source != ClockStatic {
		t.Fatalf("default clock source %q", def.Timestamp.Clock.Source)
	}
	bad := map[string]func(c *ServiceConfig){
		"tsa.clock.source": func(c *ServiceConfig) { c.Timestamp.Clock.Source = "sundial" },
		"tsa.ca":           func(c *ServiceConfig) { c.CA = "citizen2" },
		"tsa.keyType":      func(c *ServiceConfig) { c.KeyType = "rsa-1024" },
		"tsa.key":          func(c *ServiceConfig) { c.Key = "tsa-unit" },
		"tsa.renewBefore":  func(c *ServiceConfig) { c.RenewBefore = "soon" },
		"accuracy":         func(c *ServiceConfig) { c.Timestamp.Accuracy = 2 * time.Second },
		"hash algorithm":   func(c *ServiceConfig) { c.Timestamp.HashAlgorithms = []string{"SHA-1"} },
		"tsa.serialBlock":  func(c *ServiceConfig) { c.SerialBlockSize = -1 },
		"country":          func(c *ServiceConfig) { c.Country = "XX" },
	}
	for want, edit := range bad {
		c := DefaultServiceConfig()
		edit(&c)
		if err := c.Validate(isIssuer); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: Validate() = %v", want, err)
		}
	}
	for _, src := range []string{ClockChrony, ClockKernel, ClockStaticOutOfSync} {
		c := DefaultServiceConfig()
		c.Timestamp.Clock.Source = src
		if err := c.Validate(isIssuer); err != nil {
			t.Errorf("source %s: %v", src, err)
		}
	}
	if err := (ServiceConfig{}).Validate(isIssuer); err != nil {
		t.Fatalf("no TSA: %v", err)
	}
	if d, err := (ServiceConfig{}).RenewBeforeDuration(); err != nil || d != 30*24*time.Hour {
		t.Fatalf("default renewBefore %s %v", d, err)
	}
}

// TestServiceConfigUnit: renewal is checked hourly by default, and the
// unit subject carries the organisation identifier only when set.
func TestServiceConfigUnit(t *testing.T) {
	c := DefaultServiceConfig()
	c.RenewCheckInterval = 0
	if got := c.RenewCheckEvery(); got != time.Hour {
		t.Fatalf("RenewCheckEvery() = %v, want 1h", got)
	}
	c.RenewCheckInterval = time.Minute
	if got := c.RenewCheckEvery(); got != time.Minute {
		t.Fatalf("RenewCheckEvery() = %v, want 1m", got)
	}
	if s := c.UnitSubject(); s[policies.FieldCommonName] != c.CommonName || s[policies.FieldOrganizationIdentifier] != c.OrganizationIdentifier {
		t.Fatalf("UnitSubject() = %v", s)
	}
	c.OrganizationIdentifier = ""
	if _, ok := c.UnitSubject()[policies.FieldOrganizationIdentifier]; ok {
		t.Fatal("UnitSubject() names an empty organisation identifier")
	}
}
