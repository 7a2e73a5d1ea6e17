package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/thiqa/thiqa/notify"
)

// The notify section: off unless configured (the default configuration
// has none), decoded strictly, validated when enabled with each problem
// under its YAML key, and its secret file checked by CheckFiles.
func TestNotifySection(t *testing.T) {
	dir := t.TempDir()
	def, err := Default(dir).Marshal()
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(def), "notify") {
		t.Fatalf("the default configuration names notify:\n%s", def)
	}
	parse := func(section string) (*Config, error) {
		return Parse(append(append([]byte{}, def...), []byte("notify:\n"+section)...), dir)
	}
	c, err := parse("  enabled: true\n  webhook:\n    url: https://gw.example/n\n    secretFile: notify.secret\n  expiryReminders: [720h, 24h]\n")
	if err != nil {
		t.Fatal(err)
	}
	if !c.Notify.Enabled || len(c.Notify.ExpiryReminders) != 2 || c.Notify.ExpiryReminders[1].Hours() != 24 {
		t.Fatalf("parsed %+v", c.Notify)
	}
	for section, want := range map[string]string{
		"  enabled: true\n  webhook:\n    url: http://gw.example/n\n    secretFile: s\n":                             "notify.webhook.url: https is required",
		"  enabled: true\n  webhook:\n    url: https://gw.example/n\n":                                               "notify.webhook.secretFile: required",
		"  enabled: true\n  webhook:\n    url: https://gw.example/n\n    secretFile: s\n  expiryReminders: [-1h]\n":  "notify.expiryReminders[0]",
		"  enabled: true\n  webhook:\n    url: https://gw.example/n\n    secretFile: s\n  expiryReminders: [soon]\n": "soon",
		"  enabled: true\n  webhok: {}\n": "webhok",
	} {
		if _, err := parse(section); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%q: %v, want %q", section, err, want)
		}
	}
	// The secret file: missing, then readable by others, then right.
	c, err = parse("  enabled: true\n  webhook:\n    url: https://gw.example/n\n    secretFile: notify.secret\n")
	if err != nil {
		t.Fatal(err)
	}
	if err := c.CheckFiles(); err == nil || !strings.Contains(err.Error(), "notify.webhook.secretFile") {
		t.Fatalf("missing secret file: %v", err)
	}
	p := filepath.Join(dir, "notify.secret")
	if err := os.WriteFile(p, []byte("0123456789abcdef0123\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(p, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := c.CheckFiles(); err == nil || !strings.Contains(err.Error(), "chmod 0600") {
		t.Fatalf("secret readable by others: %v", err)
	}
	if err := os.Chmod(p, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := c.CheckFiles(); err != nil {
		t.Fatalf("good secret file: %v", err)
	}
	if _, err := notify.ReadSecret(c.Resolve(c.Notify.Webhook.SecretFile)); err != nil {
		t.Fatal(err)
	}
}
