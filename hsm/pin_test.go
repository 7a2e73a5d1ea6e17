package hsm

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestReadPIN(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "pin")
	if err := os.WriteFile(file, []byte("4321\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("THIQA_TEST_PIN", "8765")
	for src, want := range map[string]string{
		"env:THIQA_TEST_PIN": "8765",
		"file:" + file:       "4321",
		"file://" + file:     "4321",
	} {
		got, err := ReadPIN(src)
		if err != nil || got != want {
			t.Fatalf("ReadPIN(%q) = %q, %v", src, got, err)
		}
	}
	empty := filepath.Join(dir, "empty")
	_ = os.WriteFile(empty, []byte("\n"), 0o600)
	for _, src := range []string{"", "4321", "env:", "env:THIQA_TEST_PIN_UNSET", "file:", "file:" + filepath.Join(dir, "none"),
		"file:" + empty, "file://host/etc/pin", "vault:x"} {
		if _, err := ReadPIN(src); err == nil {
			t.Fatalf("ReadPIN(%q) succeeded", src)
		} else if strings.Contains(err.Error(), "8765") || strings.Contains(err.Error(), "4321") {
			t.Fatalf("ReadPIN(%q) error leaks the PIN: %v", src, err)
		}
	}
}
