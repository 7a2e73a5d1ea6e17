package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestDefaultRoundTrips(t *testing.T) {
	dir := t.TempDir()
	raw, err := Default(dir).Marshal()
	if err != nil {
		t.Fatal(err)
	}
	c, err := Parse(raw, dir)
	if err != nil {
		t.Fatalf("default configuration does not parse back: %v\n%s", err, raw)
	}
	if c.HSM.SoftHSM == nil || c.Store.Driver != "sqlite" || c.Resolve(c.Store.DSN) != filepath.Join(dir, "thiqa.db") {
		t.Fatalf("unexpected round trip: %+v", c)
	}
}

func TestParseRejects(t *testing.T) {
	dir := t.TempDir()
	good, err := Default(dir).Marshal()
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name, yaml, want string
	}{
		{"unknown key", string(good) + "bogus: 1\n", "field bogus not found"},
		{"empty", "", "empty"},
		{"two documents", string(good) + "---\nlisten: x\n", "more than one"},
		{"bad listen", strings.Replace(string(good), "listen: 127.0.0.1:8080", "listen: nowhere", 1), "listen"},
		{"bad driver", strings.Replace(string(good), "driver: sqlite", "driver: mysql", 1), "store.driver"},
		{"bad level", strings.Replace(string(good), "level: info", "level: loud", 1), "log.level"},
		{"bad base URL", strings.Replace(string(good), "publicBaseURL: http://127.0.0.1:8080", "publicBaseURL: ftp://x/", 1), "publicBaseURL"},
		{"long token label", strings.Replace(string(good), "tokenLabel: thiqa", "tokenLabel: "+strings.Repeat("x", 33), 1), "hsm.tokenLabel"},
		{"not yaml", "listen: [", "decoding"},
		{"metrics on the main listener", string(good) + "metrics:\n  listen: 127.0.0.1:8080\n", "metrics.listen"},
		{"bad metrics listen", string(good) + "metrics:\n  listen: nowhere\n", "metrics.listen"},
		{"unknown metrics role", string(good) + "metrics:\n  requireRole: auditor\n", "metrics.requireRole"},
		{"production is a boolean", "production: maybe\n" + string(good), "decoding"},
		{"number matching is a boolean", strings.Replace(string(good), "numberMatching: false", "numberMatching: maybe", 1), "decoding"},
		{"misspelt number matching", strings.Replace(string(good), "numberMatching: false", "numberMatchin: true", 1), "field numberMatchin not found"},
		{"negative login rate", strings.Replace(string(good), "      ratePerSecond: 1\n", "      ratePerSecond: -1\n", 1), "identity.rateLimit.login.ratePerSecond"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse([]byte(tc.yaml), dir)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Parse: got %v, want an error containing %q", err, tc.want)
			}
		})
	}
}

// TestIdentityMobileSettings: identity.mobile.numberMatching and
// identity.rateLimit are read from thiqa.yaml.
func TestIdentityMobileSettings(t *testing.T) {
	dir := t.TempDir()
	good, err := Default(dir).Marshal()
	if err != nil {
		t.Fatal(err)
	}
	y := strings.Replace(string(good), "numberMatching: false", "numberMatching: true", 1)
	y = strings.Replace(y, "      burst: 30\n", "      burst: 7\n", 1)
	c, err := Parse([]byte(y), dir)
	if err != nil {
		t.Fatal(err)
	}
	if !c.Identity.Mobile.NumberMatching || c.Identity.RateLimit.Login.Burst != 7 || c.Identity.RateLimit.Token.RatePerSecond <= 0 {
		t.Fatalf("identity: %+v", c.Identity)
	}
}

func TestReadSecret(t *testing.T) {
	dir := t.TempDir()
	f := filepath.Join(dir, "pin")
	if err := os.WriteFile(f, []byte("123456\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if v, err := ReadSecret(f, ""); err != nil || v != "123456" {
		t.Fatalf("ReadSecret(file) = %q, %v", v, err)
	}
	t.Setenv("THIQA_TEST_PIN", "987654")
	if v, err := ReadSecret(f, "THIQA_TEST_PIN"); err != nil || v != "987654" {
		t.Fatalf("ReadSecret(env) = %q, %v", v, err)
	}
	if _, err := ReadSecret(filepath.Join(dir, "missing"), ""); err == nil {
		t.Fatal("missing file accepted")
	}
	empty := filepath.Join(dir, "empty")
	_ = os.WriteFile(empty, []byte("\n"), 0o600)
	if _, err := ReadSecret(empty, ""); err == nil || strings.Contains(err.Error(), "123456") {
		t.Fatalf("empty secret: %v", err)
	}
}

func TestDevelopmentIssuers(t *testing.T) {
	dir := t.TempDir()
	raw, err := Default(dir).Marshal()
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(raw), "development: true") {
		t.Fatalf("the default configuration does not mark the development issuer:\n%s", raw)
	}
	c, err := Parse(raw, dir)
	if err != nil || len(c.DevelopmentIssuers()) != 1 {
		t.Fatalf("development issuers: %v %v", c.DevelopmentIssuers(), err)
	}
	// An older configuration without the mark still counts it.
	old := strings.Replace(string(raw), "      development: true\n", "", 1)
	if c, err = Parse([]byte(old), dir); err != nil || len(c.DevelopmentIssuers()) != 1 {
		t.Fatalf("unmarked development issuer: %v %v", c.DevelopmentIssuers(), err)
	}
}

func TestVerifyTrustedProxies(t *testing.T) {
	dir := t.TempDir()
	good, err := Default(dir).Marshal()
	if err != nil {
		t.Fatal(err)
	}
	with := func(list string) string {
		return strings.Replace(string(good), "verify:\n", "verify:\n  trustedProxies: "+list+"\n", 1)
	}
	c, err := Parse([]byte(with(`["10.0.0.0/8", "2001:db8::/32", "192.0.2.7"]`)), dir)
	if err != nil || len(c.Verify.TrustedProxies) != 3 {
		t.Fatalf("valid trustedProxies: %v %+v", err, c)
	}
	for _, bad := range []string{`["10.0.0.1/8"]`, `["0.0.0.0/0"]`, `["proxy.example"]`, `[""]`, `"10.0.0.0/8"`, `{a: b}`} {
		if _, err := Parse([]byte(with(bad)), dir); err == nil || !strings.Contains(err.Error(), "trustedProxies") && !strings.Contains(err.Error(), "decoding") {
			t.Errorf("trustedProxies %s: %v, want an error naming it", bad, err)
		}
	}
}

// TestInitial: a new folder gets the default or the --config file (a bad
// one is refused naming it); a folder's own configuration wins.
func TestInitial(t *testing.T) {
	dir := t.TempDir()
	c, installed, err := Initial(dir, "")
	if err != nil || installed || c.Listen != Default(dir).Listen || c.Dir() != dir {
		t.Fatalf("default: %v %v %v", c, installed, err)
	}
	from := filepath.Join(t.TempDir(), "given.yaml")
	d := Default("")
	d.Listen = "127.0.0.1:9090"
	raw, err := d.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(from, raw, 0o600); err != nil {
		t.Fatal(err)
	}
	if c, installed, err = Initial(dir, from); err != nil || installed || c.Listen != "127.0.0.1:9090" || c.Dir() != dir {
		t.Fatalf("--config: %v %v %v", c, installed, err)
	}
	if _, _, err := Initial(dir, filepath.Join(dir, "missing.yaml")); err == nil || !strings.Contains(err.Error(), "--config") {
		t.Fatalf("missing --config: %v", err)
	}
	if err := os.WriteFile(Path(dir), raw, 0o600); err != nil {
		t.Fatal(err)
	}
	if c, installed, err = Initial(dir, "/nonexistent"); err != nil || !installed || c.Listen != "127.0.0.1:9090" {
		t.Fatalf("the folder's own: %v %v %v", c, installed, err)
	}
}

// TestDefaultText: the printed default opens with its comments, parses
// back, and carries the clock source asked for.
func TestDefaultText(t *testing.T) {
	raw, err := DefaultText("chrony")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(string(raw), "# Thiqa configuration (printed by thiqa config default).") {
		t.Fatalf("no header:\n%s", raw)
	}
	c, err := Parse(raw, "/")
	if err != nil || c.TSA.Timestamp.Clock.Source != "chrony" {
		t.Fatalf("parsed back: %v", err)
	}
	if raw, _ = DefaultText(""); !strings.Contains(string(raw), "source: static\n") {
		t.Fatalf("default clock source:\n%s", raw)
	}
}

func TestResolveIn(t *testing.T) {
	for _, c := range []struct{ p, want string }{
		{"", ""},
		{"/etc/thiqa/ca.pem", "/etc/thiqa/ca.pem"},
		{"secrets/user.pin", "/data/secrets/user.pin"},
	} {
		if got := resolveIn("/data", c.p); got != c.want {
			t.Errorf("resolveIn(/data, %q) = %q, want %q", c.p, got, c.want)
		}
	}
}
