package signing_test

import (
	"strings"
	"testing"
	"time"

	"github.com/thiqa/thiqa/signing"
)

type enabled bool

func (e enabled) Enabled() bool { return bool(e) }

// TestServiceConfig: zero values take the defaults; the service runs only
// with a CA; each bad value is refused naming its key.
func TestServiceConfig(t *testing.T) {
	if got, want := (signing.ServiceConfig{}).WithDefaults(), signing.DefaultServiceConfig(); got.Timeout != want.Timeout || got.MaxDocumentBytes != want.MaxDocumentBytes || got.PINTime != want.PINTime {
		t.Fatalf("WithDefaults: %+v", got)
	}
	if err := (signing.ServiceConfig{}).Validate(); err != nil {
		t.Fatalf("an empty section: %v", err)
	}
	c := signing.DefaultServiceConfig()
	if !c.Enabled(enabled(true)) || c.Enabled(enabled(false)) || (signing.ServiceConfig{Disabled: true}).Enabled(enabled(true)) {
		t.Fatal("Enabled")
	}
	if u := c.TSAURLOrDefault("http://h"); u != "http://h/tsa" {
		t.Fatalf("TSA URL %q", u)
	}
	for want, edit := range map[string]func(c *signing.ServiceConfig){
		"signing.tsaURL":                func(c *signing.ServiceConfig) { c.TSAURL = "x" },
		"signing.timeout":               func(c *signing.ServiceConfig) { c.Timeout = time.Hour },
		"signing.sadLifetime":           func(c *signing.ServiceConfig) { c.SADLifetime = time.Second },
		"signing.pinPolicy.maxFailures": func(c *signing.ServiceConfig) { c.PINPolicy.MaxFailures = 50 },
		"signing.timeZone":              func(c *signing.ServiceConfig) { c.TimeZone = "Mars/Olympus" },
	} {
		c := signing.DefaultServiceConfig()
		edit(&c)
		if err := c.Validate(); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: %v", want, err)
		}
	}
}
