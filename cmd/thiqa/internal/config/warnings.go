package config

import (
	"fmt"
	"strings"

	"github.com/thiqa/thiqa/ca"
	"github.com/thiqa/thiqa/timestamp"
)

// placeholder marks the default subject names that are to be replaced.
const placeholder = "PLACEHOLDER"

// ProductionWarnings lists what a production deployment should not keep
// from the development defaults but that serve does not refuse: subject
// names still marked PLACEHOLDER, which the CA and TSA certificates carry
// for their whole life once `thiqa init` has made them, and a TSA clock
// declared in sync without any check. It is empty unless Production is set.
func (c *Config) ProductionWarnings() []string {
	if !c.Production {
		return nil
	}
	var out []string
	named := func(key, value string) {
		if strings.Contains(value, placeholder) {
			out = append(out, fmt.Sprintf("%s is a placeholder (%q): set the name before `thiqa init` makes the certificate", key, value))
		}
	}
	if c.CA.Enabled() {
		kc := func(key string, k ca.KeyConfig) {
			named(key+".commonName", k.CommonName)
			named(key+".organization", k.Organization)
		}
		kc("ca.root", c.CA.Root)
		for i, is := range c.CA.Issuers {
			kc(fmt.Sprintf("ca.issuers[%d]", i), is)
		}
	}
	if c.TSA.Enabled() {
		named("tsa.commonName", c.TSA.CommonName)
		named("tsa.organization", c.TSA.Organization)
		if c.TSA.Timestamp.Clock.Source == timestamp.ClockStatic {
			out = append(out, "tsa.clock.source is static: the TSA declares the clock in sync without checking it (development only); use chrony or kernel")
		}
	}
	return out
}
