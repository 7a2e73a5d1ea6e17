package config

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/thiqa/thiqa/internal/auth"
)

// CheckFiles names every file the operator provides that cannot be read,
// each under its YAML key, and asks nothing of what `thiqa init` writes: the
// default configuration of a folder not yet initialised passes.
func TestCheckFiles(t *testing.T) {
	dir := t.TempDir()
	c := Default(dir)
	if _, err := os.Stat(c.HSM.Module); err != nil {
		t.Fatalf("the default PKCS#11 module: %v (install softhsm2: scripts/install-deps.sh)", err)
	}
	if err := c.CheckFiles(); err != nil {
		t.Fatalf("the default configuration before init: %v", err)
	}

	present := filepath.Join(dir, "present.pem")
	if err := os.WriteFile(present, []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	c.HSM.Module = filepath.Join(dir, "no-module.so")
	c.HSM.SoftHSM = nil // a token Thiqa does not manage: its PIN file is the operator's
	c.HSM.PINFile, c.HSM.PINEnv = "secrets/none.pin", ""
	c.TLS = &TLSConfig{CertFile: "present.pem", KeyFile: "tls/missing.key"}
	c.Auth.Issuers = append(c.Auth.Issuers, auth.IssuerConfig{Issuer: "https://idp.example", JWKSFile: "idp.jwks.json"})
	c.Auth.MTLS.ClientCAFiles = []string{present, "clients.pem"}
	c.Verify.TrustAnchorFiles = []string{dir} // a folder
	c.Signing.Fonts = []string{"fonts/none.ttf"}
	err := c.CheckFiles()
	var all interface{ Unwrap() []error }
	if !errors.As(err, &all) {
		t.Fatalf("want every problem at once, got %v", err)
	}
	want := []string{"hsm.module", "hsm.pinFile", "tls.keyFile", "auth.issuers[1].jwksFile", "auth.mtls.clientCAFiles[1]",
		"verify.trustAnchorFiles[0]", "signing.fonts[0]"}
	if len(all.Unwrap()) != len(want) {
		t.Fatalf("%d problems, want %d:\n%v", len(all.Unwrap()), len(want), err)
	}
	for i, e := range all.Unwrap() {
		if !strings.HasPrefix(e.Error(), want[i]+": ") {
			t.Errorf("problem %d: %v, want it under %s", i, e, want[i])
		}
	}
	if !errors.Is(err, os.ErrNotExist) {
		t.Errorf("a missing file is not os.ErrNotExist: %v", err)
	}
	// A disabled service's files are not asked for; a PIN from the
	// environment needs no file.
	c.Verify.Disabled, c.Signing.Disabled = true, true
	c.HSM.PINEnv = "THIQA_TEST_CHECKFILES_PIN"
	t.Setenv(c.HSM.PINEnv, "1234")
	if all, ok := c.CheckFiles().(interface{ Unwrap() []error }); !ok || len(all.Unwrap()) != 4 {
		t.Fatalf("with verify and signing off and the PIN in the environment: %v", c.CheckFiles())
	}
}
