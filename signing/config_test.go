package signing_test

import (
	"math"
	"strings"
	"testing"
	"time"

	"gopkg.in/yaml.v3"

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
		// The multipart bound adds the image and the framing to it: near
		// the int64 maximum that wraps negative and refuses every upload.
		"signing.maxDocumentBytes": func(c *signing.ServiceConfig) { c.MaxDocumentBytes = math.MaxInt64 },
	} {
		c := signing.DefaultServiceConfig()
		edit(&c)
		if err := c.Validate(); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: %v", want, err)
		}
	}
}

// TestServiceConfigConfig: the runtime Config of a section has its
// defaults, the PIN cost, the temporary folder resolved against the data
// folder and the verification page under publicBaseURL.
func TestServiceConfigConfig(t *testing.T) {
	resolve := func(p string) string {
		if p == "" {
			return ""
		}
		return "/data/" + p
	}
	c := signing.ServiceConfig{TempDir: "tmp", PINMemoryKiB: 9000, PINTime: 3, TimeZone: "Asia/Muscat"}
	got, err := c.Config(resolve, "https://thiqa.example/", nil)
	if err != nil {
		t.Fatal(err)
	}
	d := signing.DefaultServiceConfig()
	if got.Timeout != d.Timeout || got.MaxHashesPerSAD != d.MaxHashesPerSAD || got.SADLifetime != d.SADLifetime {
		t.Errorf("defaults not filled: %+v", got)
	}
	if got.TempDir != "/data/tmp" || got.PIN.MemoryKiB != 9000 || got.PIN.Time != 3 {
		t.Errorf("tempDir %q, PIN %+v", got.TempDir, got.PIN)
	}
	if got.Appearance.VerifyURL != "https://thiqa.example/verify" || got.Appearance.Location.String() != "Asia/Muscat" {
		t.Errorf("appearance %+v", got.Appearance)
	}
	if _, err := (signing.ServiceConfig{Fonts: []string{"none.ttf"}}).Config(resolve, "http://h", nil); err == nil {
		t.Error("a configured font that cannot be read was accepted")
	}
}

// TestPINPolicyFirstPINActivation: signing.pinPolicy.firstPINActivation is
// off by default and absent from a written configuration (whose other
// pinPolicy keys stay where they were), decodes strictly beside them
// (a key misspelt or a value not a boolean is refused) and reaches the
// service's Config.
func TestPINPolicyFirstPINActivation(t *testing.T) {
	d := signing.DefaultServiceConfig()
	if d.PINPolicy.FirstPINActivation {
		t.Fatal("on by default")
	}
	out, err := yaml.Marshal(d)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(out), "firstPINActivation") || !strings.Contains(string(out), "pinPolicy:\n    minLength: 6\n") {
		t.Fatalf("default written as:\n%s", out)
	}
	decode := func(doc string) (signing.ServiceConfig, error) {
		var c signing.ServiceConfig
		dec := yaml.NewDecoder(strings.NewReader(doc))
		dec.KnownFields(true)
		err := dec.Decode(&c)
		return c, err
	}
	c, err := decode("pinPolicy:\n  minLength: 8\n  firstPINActivation: true\n")
	if err != nil {
		t.Fatal(err)
	}
	if !c.PINPolicy.FirstPINActivation || c.PINPolicy.MinLength != 8 {
		t.Fatalf("decoded %+v", c.PINPolicy)
	}
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	for _, bad := range []string{"pinPolicy:\n  firstPINActivation: maybe\n", "pinPolicy:\n  firstPinActivation: true\n"} {
		if _, err := decode(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
	got, err := c.Config(func(p string) string { return p }, "http://h", nil)
	if err != nil {
		t.Fatal(err)
	}
	if !got.FirstPINActivation || got.PIN.MinLength != 8 {
		t.Fatalf("Config: firstPINActivation %v, PIN %+v", got.FirstPINActivation, got.PIN)
	}
	if got, _ := d.Config(func(p string) string { return p }, "http://h", nil); got.FirstPINActivation {
		t.Fatal("the default Config has it on")
	}
}
