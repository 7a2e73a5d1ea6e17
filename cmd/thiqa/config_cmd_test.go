package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/thiqa/thiqa/cmd/thiqa/internal/config"
	"github.com/thiqa/thiqa/internal/auth"
	"github.com/thiqa/thiqa/timestamp"
)

// TestConfigVerb checks `thiqa config default` prints a configuration that
// `thiqa config check` (and so init and serve) accepts, with the TSA clock
// source asked for, and that both refuse bad input with one clear line.
func TestConfigVerb(t *testing.T) {
	dir := t.TempDir()
	out := mustThiqa(t, nil, "config", "default", "--clock", "kernel").stdout
	if !strings.HasPrefix(out, "# Thiqa configuration") {
		t.Fatalf("no header:\n%s", out)
	}
	cfg, err := config.Parse([]byte(out), dir)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.TSA.Timestamp.Clock.Source != timestamp.ClockKernel {
		t.Fatalf("clock source %q", cfg.TSA.Timestamp.Clock.Source)
	}
	writeFile(t, filepath.Join(dir, "thiqa.yaml"), out)
	if got := mustThiqa(t, nil, "config", "check", "--data", dir).stdout; got != filepath.Join(dir, "thiqa.yaml")+": ok\n" {
		t.Fatalf("check: %q", got)
	}

	if r := thiqa(t, nil, "config", "default", "--clock", "ntp"); r.code != 2 || !strings.Contains(errorLine(t, r), "tsa.clock.source") {
		t.Fatalf("bad clock: exit %d, %s", r.code, r.stderr)
	}
	writeFile(t, filepath.Join(dir, "thiqa.yaml"), strings.Replace(out, "listen:", "listne:", 1))
	if r := thiqa(t, nil, "config", "check", "--data", dir); r.code != 1 || !strings.Contains(errorLine(t, r), "listne") {
		t.Fatalf("bad key: exit %d, %s", r.code, r.stderr)
	}
	// What thiqa serve refuses to start with, config check refuses too:
	// production with the development token issuer still trusted.
	writeFile(t, filepath.Join(dir, "thiqa.yaml"), "production: true\n"+out)
	if r := thiqa(t, nil, "config", "check", "--data", dir); r.code != 1 || !strings.Contains(errorLine(t, r), "production: true but trusts the development token issuer") {
		t.Fatalf("production with the development issuer: exit %d, %s", r.code, r.stderr)
	}
	// Without it, production is only warned of, one line per setting of the
	// production table still at its development value: exit 0.
	prod := *cfg
	prod.Production, prod.Auth.Issuers = true, []auth.IssuerConfig{{Issuer: "https://idp.gov.example", Audience: "thiqa", JWKSURL: "https://idp.gov.example/jwks.json"}}
	raw, err := prod.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(dir, "thiqa.yaml"), string(raw))
	r := mustThiqa(t, nil, "config", "check", "--data", dir)
	for _, w := range []string{"metrics.requireRole is not set", "store.driver is sqlite: one node only", "ca.root is on the online token"} {
		if !strings.Contains(r.stderr, "thiqa config: "+filepath.Join(dir, "thiqa.yaml")+": warning: "+w) {
			t.Errorf("production: no warning %q:\n%s", w, r.stderr)
		}
	}
	// The files serve would read, named under their keys, all at once.
	writeFile(t, filepath.Join(dir, "thiqa.yaml"), out+"tls:\n  certFile: tls/cert.pem\n  keyFile: tls/key.pem\n")
	if r := thiqa(t, nil, "config", "check", "--data", dir); r.code != 1 || !strings.Contains(r.stderr, "tls.certFile: open ") ||
		!strings.Contains(r.stderr, "\nthiqa config: "+filepath.Join(dir, "thiqa.yaml")+": tls.keyFile: open ") || r.stdout != "" {
		t.Fatalf("missing TLS files: exit %d, %s", r.code, r.stderr)
	}
	if err := os.Remove(filepath.Join(dir, "thiqa.yaml")); err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{{"config"}, {"config", "print"}, {"config", "check"}} {
		if r := thiqa(t, nil, args...); r.code != 2 {
			t.Errorf("%v: exit %d", args, r.code)
		}
	}
}
