package hierarchy

import (
	"os"
	"path/filepath"
	"testing"
)

// TestGenerationsPool: the first generation's certificate must be there
// and readable (the pool's contents are tested through the identity
// login of cmd/thiqa).
func TestGenerationsPool(t *testing.T) {
	dir := t.TempDir()
	if _, err := GenerationsPool(dir, "citizen"); err == nil {
		t.Fatal("a pool without the CA's certificate")
	}
	if err := os.WriteFile(filepath.Join(dir, "citizen.pem"), []byte("not PEM"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := GenerationsPool(dir, "citizen"); err == nil {
		t.Fatal("a pool from an unreadable certificate")
	}
}
