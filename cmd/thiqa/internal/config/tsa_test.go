package config

import (
	"strings"
	"testing"
	"time"
)

func TestTSAConfig(t *testing.T) {
	def := Default(t.TempDir())
	if err := def.Validate(); err != nil {
		t.Fatalf("default: %v", err)
	}
	if def.TSA.Timestamp.Clock.Source != ClockStatic {
		t.Fatalf("default clock source %q", def.TSA.Timestamp.Clock.Source)
	}
	bad := map[string]func(c *Config){
		"tsa.clock.source":   func(c *Config) { c.TSA.Timestamp.Clock.Source = "sundial" },
		"tsa.ca":             func(c *Config) { c.TSA.CA = "citizen2" },
		"tsa.keyType":        func(c *Config) { c.TSA.KeyType = "rsa-1024" },
		"tsa.key":            func(c *Config) { c.TSA.Key = "tsa-unit" },
		"tsa.renewBefore":    func(c *Config) { c.TSA.RenewBefore = "soon" },
		"accuracy":           func(c *Config) { c.TSA.Timestamp.Accuracy = 2 * time.Second },
		"hash algorithm":     func(c *Config) { c.TSA.Timestamp.HashAlgorithms = []string{"SHA-1"} },
		"tsa.serialBlock":    func(c *Config) { c.TSA.SerialBlockSize = -1 },
		"country":            func(c *Config) { c.TSA.Country = "XX" },
		"tsa.ca: \"tsa\" is": func(c *Config) { c.CA = CAConfig{} },
	}
	for want, edit := range bad {
		c := Default(t.TempDir())
		edit(c)
		err := c.Validate()
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: Validate() = %v", want, err)
		}
	}
	for _, src := range []string{ClockChrony, ClockKernel, ClockStaticOutOfSync} {
		c := Default(t.TempDir())
		c.TSA.Timestamp.Clock.Source = src
		if err := c.Validate(); err != nil {
			t.Errorf("source %s: %v", src, err)
		}
	}
	off := Default(t.TempDir())
	off.TSA = TSAConfig{}
	if err := off.Validate(); err != nil {
		t.Fatalf("no TSA: %v", err)
	}
}
