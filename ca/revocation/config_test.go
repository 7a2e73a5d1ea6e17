package revocation_test

import (
	"strings"
	"testing"
	"time"

	"github.com/thiqa/thiqa/ca/revocation"
)

// TestConfigSettings: the default section validates with the CRLs under
// publicBaseURL; another CRL base URL, a bad responder key type and a poll
// interval out of range are refused; without a CA nothing is checked.
func TestConfigSettings(t *testing.T) {
	const base = "http://127.0.0.1:8080"
	s, err := revocation.DefaultConfig().Settings(base)
	if err != nil || s.CRL.BaseURL != base || s.PollEvery != 2*time.Second || s.ResponderKeyType != "ec-p256" {
		t.Fatalf("default: %+v %v", s, err)
	}
	for want, edit := range map[string]func(c *revocation.Config){
		"revocation.crl.baseURL":      func(c *revocation.Config) { c.CRL.BaseURL = "http://elsewhere" },
		"revocation.crl:":             func(c *revocation.Config) { c.CRL.Validity = time.Second },
		"revocation.ocsp:":            func(c *revocation.Config) { c.OCSP.Validity = -time.Second },
		"revocation.responderKeyType": func(c *revocation.Config) { c.ResponderKeyType = "dsa" },
		"revocation.pollEvery":        func(c *revocation.Config) { c.PollEvery = time.Millisecond },
		// A renewal margin as long as the responder certificates' 7-day
		// life would make a new responder key at every renewal check.
		"revocation.ocsp.renewBefore: 168h": func(c *revocation.Config) { c.OCSP.RenewBefore = 7 * 24 * time.Hour },
		"revocation.ocsp.renewBefore: 200h": func(c *revocation.Config) { c.OCSP.Validity, c.OCSP.RenewBefore = 100*time.Hour, 0 },
	} {
		c := revocation.DefaultConfig()
		edit(&c)
		if err := c.Validate(base, true); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: %v", want, err)
		}
		if err := c.Validate(base, false); err != nil {
			t.Errorf("%s without a CA: %v", want, err)
		}
	}
	// The longest margin that leaves a responder certificate an hour in use.
	c := revocation.DefaultConfig()
	c.OCSP.Validity, c.OCSP.RefreshEvery, c.OCSP.RenewBefore = 3*24*time.Hour, 24*time.Hour, 167*time.Hour
	if err := c.Validate(base, true); err != nil {
		t.Fatalf("renewBefore 167h: %v", err)
	}
}
