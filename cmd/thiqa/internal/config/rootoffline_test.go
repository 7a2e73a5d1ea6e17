package config

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestSetRootOffline: the root of a configuration becomes offline (name
// and offline: true, nothing else of ca.root); the rest of the file,
// comments included, stays; a second run changes nothing.
func TestSetRootOffline(t *testing.T) {
	dir := t.TempDir()
	raw, err := Default(dir).Marshal()
	if err != nil {
		t.Fatal(err)
	}
	text := "# operator's note: keep\n" + strings.Replace(string(raw), "  issuers:\n", "  # the issuing CAs\n  issuers:\n", 1)
	if err := os.WriteFile(Path(dir), []byte(text), 0o640); err != nil {
		t.Fatal(err)
	}
	changed, err := SetRootOffline(dir)
	if err != nil || !changed {
		t.Fatalf("SetRootOffline: %v, %v", changed, err)
	}
	c, err := Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	if !c.CA.Root.Offline || c.CA.Root.Key != "" || c.CA.Root.Name != "root" || len(c.CA.Issuers) != 3 || c.CA.Issuers[0].Key == "" {
		t.Fatalf("ca after SetRootOffline: %+v", c.CA)
	}
	got, _ := os.ReadFile(Path(dir))
	for _, want := range []string{"# operator's note: keep", "# the issuing CAs", "offline: true"} {
		if !strings.Contains(string(got), want) {
			t.Errorf("thiqa.yaml lost %q:\n%s", want, got)
		}
	}
	if fi, _ := os.Stat(Path(dir)); fi.Mode().Perm() != 0o640 {
		t.Errorf("mode %v", fi.Mode().Perm())
	}
	if changed, err := SetRootOffline(dir); err != nil || changed {
		t.Fatalf("SetRootOffline again: %v, %v", changed, err)
	}
	if _, err := SetRootOffline(filepath.Join(dir, "none")); err == nil || !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("no thiqa.yaml: %v", err)
	}
}
