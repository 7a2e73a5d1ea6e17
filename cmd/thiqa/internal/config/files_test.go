package config

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/thiqa/thiqa/internal/auth"
	"github.com/thiqa/thiqa/verify/tsl"
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

// Production names the deployment's own CA certificates as client CAs (and
// a verifier may take the root as a trust anchor): `thiqa init` writes them,
// so `thiqa config check` before the first init does not ask for them,
// while another missing file in the same lists is still named.
func TestCheckFilesBeforeInitTakesTheCACertificates(t *testing.T) {
	c := Default(t.TempDir())
	c.Auth.MTLS.ClientCAFiles = []string{"ca/citizen.pem", "ca/organisation.pem"}
	c.Verify.TrustAnchorFiles = []string{"ca/root.pem"}
	if err := c.CheckFiles(); err != nil {
		t.Fatalf("before init, the CA certificates init writes are asked for: %v", err)
	}
	c.Auth.MTLS.ClientCAFiles = append(c.Auth.MTLS.ClientCAFiles, "ca/partner.pem")
	err := c.CheckFiles()
	if err == nil || !strings.HasPrefix(err.Error(), "auth.mtls.clientCAFiles[2]: ") || !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("a client CA file init does not write, missing: %v", err)
	}
	// Once init wrote it, a certificate that cannot be read is named.
	if err := os.MkdirAll(filepath.Join(c.Dir(), "ca", "citizen.pem"), 0o700); err != nil {
		t.Fatal(err)
	}
	c.Auth.MTLS.ClientCAFiles = c.Auth.MTLS.ClientCAFiles[:2]
	if err := c.CheckFiles(); err == nil || !strings.HasPrefix(err.Error(), "auth.mtls.clientCAFiles[0]: ") {
		t.Fatalf("a CA certificate path that is a folder: %v", err)
	}
}

// Once `thiqa init` has written the CA certificates, one of them missing
// (deleted, or lost with a restore) is named by config check like any other
// file that serve reads: the exemption holds only before the first init.
func TestCheckFilesAfterInitAsksForTheCACertificates(t *testing.T) {
	c := Default(t.TempDir())
	c.Auth.MTLS.ClientCAFiles = []string{"ca/citizen.pem", "./ca/organisation.pem"}
	if err := c.CheckFiles(); err != nil {
		t.Fatalf("before init (a path spelled ./ca/… included): %v", err)
	}
	// init ran: it wrote the root's and the organisation CA's certificates;
	// the citizen CA's is gone since.
	for _, name := range []string{"root", "organisation"} {
		p := filepath.Join(c.Dir(), "ca", name+".pem")
		if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte("x"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	err := c.CheckFiles()
	if err == nil || !strings.HasPrefix(err.Error(), "auth.mtls.clientCAFiles[0]: ") || !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("after init, a missing CA certificate named as a client CA: %v", err)
	}
}

// The trusted lists a verifier keeps as files, and the certificates of
// their signers, are files the operator provides: config check names the
// missing ones and the backup lists them (ProvidedFiles).
func TestCheckFilesTrustedLists(t *testing.T) {
	dir := t.TempDir()
	c := Default(dir)
	present := filepath.Join(dir, "signer.pem")
	if err := os.WriteFile(present, []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	c.Verify.TrustedLists = []tsl.SourceConfig{
		{File: "tsl/om.xml", Signers: []string{"signer.pem", "tsl/om-signer.pem"}},
		{URL: "https://tsl.example/eu-lotl.xml", Signers: []string{present}},
	}
	err := c.CheckFiles()
	var all interface{ Unwrap() []error }
	if !errors.As(err, &all) {
		t.Fatalf("want every problem at once, got %v", err)
	}
	want := []string{"verify.trustedLists[0].file: ", "verify.trustedLists[0].signers[1]: "}
	if len(all.Unwrap()) != len(want) {
		t.Fatalf("%d problems, want %d:\n%v", len(all.Unwrap()), len(want), err)
	}
	for i, e := range all.Unwrap() {
		if !strings.HasPrefix(e.Error(), want[i]) {
			t.Errorf("problem %d: %v, want it under %s", i, e, want[i])
		}
	}
	var keys []string
	for _, pf := range c.ProvidedFiles() {
		keys = append(keys, pf.Key+"="+pf.Path)
	}
	if w := "verify.trustedLists[0].file=" + filepath.Join(dir, "tsl", "om.xml"); !slices.Contains(keys, w) {
		t.Errorf("ProvidedFiles %q lacks %s", keys, w)
	}
	c.Verify.Disabled = true
	if err := c.CheckFiles(); err != nil {
		t.Errorf("with verify off: %v", err)
	}
}
