package hsm

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// TestPrepareSoftHSM creates what is missing, with fresh PINs, and never
// replaces a file; PINFile "" is skipped.
func TestPrepareSoftHSM(t *testing.T) {
	dir := t.TempDir()
	f := SoftHSMFiles{TokenDir: filepath.Join(dir, "tokens"), Conf: filepath.Join(dir, "softhsm2.conf"),
		SOPINFile: filepath.Join(dir, "secrets", "so-pin"), PINFile: filepath.Join(dir, "secrets", "pin")}
	created, err := PrepareSoftHSM(f, "thiqa init")
	if err != nil || !slices.Equal(created, []string{f.TokenDir, f.Conf, f.SOPINFile, f.PINFile}) {
		t.Fatalf("created %v, %v", created, err)
	}
	conf, _ := os.ReadFile(f.Conf)
	if !strings.Contains(string(conf), "written by thiqa init\ndirectories.tokendir = "+f.TokenDir+"\n") {
		t.Fatalf("configuration:\n%s", conf)
	}
	so, _ := os.ReadFile(f.SOPINFile)
	pin, _ := os.ReadFile(f.PINFile)
	if len(so) != 27 || string(so) == string(pin) {
		t.Fatalf("PINs %q %q", so, pin)
	}
	again, err := PrepareSoftHSM(SoftHSMFiles{TokenDir: f.TokenDir, Conf: f.Conf, SOPINFile: f.SOPINFile}, "thiqa init")
	if err != nil || len(again) != 0 {
		t.Fatalf("second run created %v, %v", again, err)
	}
	if so2, _ := os.ReadFile(f.SOPINFile); string(so2) != string(so) {
		t.Fatal("the SO PIN was replaced")
	}
}

// TestSoftHSMTokenDir reads back the token folder of a configuration
// SoftHSMConf writes and of one written by hand; a configuration that
// names none gives "", a missing one an error.
func TestSoftHSMTokenDir(t *testing.T) {
	dir := t.TempDir()
	for name, tc := range map[string]struct{ conf, want string }{
		"written":  {string(SoftHSMConf("/srv/tokens", "test")), "/srv/tokens"},
		"by hand":  {"# mine\nlog.level = INFO\n  directories.tokendir =   /var/lib/softhsm/tokens  \n", "/var/lib/softhsm/tokens"},
		"no token": {"objectstore.backend = file\n", ""},
	} {
		p := filepath.Join(dir, name+".conf")
		if err := os.WriteFile(p, []byte(tc.conf), 0o600); err != nil {
			t.Fatal(err)
		}
		if got, err := SoftHSMTokenDir(p); err != nil || got != tc.want {
			t.Errorf("%s: %q, %v; want %q", name, got, err, tc.want)
		}
	}
	if _, err := SoftHSMTokenDir(filepath.Join(dir, "missing.conf")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("a missing configuration: %v", err)
	}
}
