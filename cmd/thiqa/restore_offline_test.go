package main

import (
	"io"
	"os"
	"testing"

	"github.com/thiqa/thiqa/ca"
	"github.com/thiqa/thiqa/cmd/thiqa/internal/config"
)

// TestRestoreConfiguresAnOfflineRoot checks what a restore asks of the
// token for a deployment made with thiqa init --root-cert: its
// configuration has no root key, so the restore must not look one up.
// Configure failed with "key URI \"\": hsm: key URI must start with
// \"pkcs11:\"", and no offline-root deployment could be restored.
func TestRestoreConfiguresAnOfflineRoot(t *testing.T) {
	dir := t.TempDir()
	c := config.Default(dir)
	c.CA.Root = ca.KeyConfig{Name: "root", Offline: true}
	raw, err := c.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(config.Path(dir), raw, 0o600); err != nil {
		t.Fatal(err)
	}
	h := &restoreHost{env: &cliEnv{stdout: io.Discard, stderr: io.Discard}, data: dir}
	set, err := h.Configure("")
	if err != nil {
		t.Fatalf("configuring the restore of an offline-root deployment: %v", err)
	}
	if !set.RootOffline || set.RootKeyLabel != "" {
		t.Errorf("settings: RootOffline %v, RootKeyLabel %q; want an offline root without a key label", set.RootOffline, set.RootKeyLabel)
	}
}
