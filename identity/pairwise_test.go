package identity

import (
	"os"
	"path/filepath"
	"testing"
)

// TestPairwiseSecret: created once (0600), kept afterwards, read back; a
// short or malformed secret is refused.
func TestPairwiseSecret(t *testing.T) {
	path := filepath.Join(t.TempDir(), "secrets", "pairwise")
	if created, err := CreatePairwiseSecret(path); err != nil || !created {
		t.Fatalf("first: %v %v", created, err)
	}
	raw, _ := os.ReadFile(path)
	if created, err := CreatePairwiseSecret(path); err != nil || created {
		t.Fatalf("second: %v %v", created, err)
	}
	if again, _ := os.ReadFile(path); string(again) != string(raw) {
		t.Fatal("the secret was replaced")
	}
	if st, _ := os.Stat(path); st.Mode().Perm() != 0o600 {
		t.Fatalf("mode %v", st.Mode())
	}
	if b, err := ParsePairwiseSecret(raw, path); err != nil || len(b) != 32 {
		t.Fatalf("parse: %d %v", len(b), err)
	}
	for _, bad := range []string{"abcd\n", "zz" + string(raw[2:])} {
		if _, err := ParsePairwiseSecret([]byte(bad), path); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}
