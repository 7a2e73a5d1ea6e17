package config

import (
	"strings"
	"testing"

	"github.com/thiqa/thiqa/timestamp"
)

// In production the development defaults left in the configuration are
// named: every placeholder subject name and the static TSA clock; outside
// production, and once they are replaced, nothing is said.
func TestProductionWarnings(t *testing.T) {
	c := Default(t.TempDir())
	if w := c.ProductionWarnings(); len(w) != 0 {
		t.Fatalf("outside production: %v", w)
	}
	c.Production = true
	w := strings.Join(c.ProductionWarnings(), "\n")
	for _, key := range []string{"ca.root.commonName", "ca.root.organization", "ca.issuers[0].commonName", "ca.issuers[2].organization",
		"tsa.commonName", "tsa.organization", "tsa.clock.source is static"} {
		if !strings.Contains(w, key) {
			t.Errorf("no warning for %s:\n%s", key, w)
		}
	}
	rename := func(s string) string { return strings.ReplaceAll(s, " (PLACEHOLDER)", "") }
	c.CA.Root.CommonName, c.CA.Root.Organization = rename(c.CA.Root.CommonName), rename(c.CA.Root.Organization)
	for i := range c.CA.Issuers {
		c.CA.Issuers[i].CommonName, c.CA.Issuers[i].Organization = rename(c.CA.Issuers[i].CommonName), rename(c.CA.Issuers[i].Organization)
	}
	c.TSA.CommonName, c.TSA.Organization = rename(c.TSA.CommonName), rename(c.TSA.Organization)
	c.TSA.Timestamp.Clock.Source = timestamp.ClockKernel
	if w := c.ProductionWarnings(); len(w) != 0 {
		t.Fatalf("with the names set and the kernel clock: %v", w)
	}
}
