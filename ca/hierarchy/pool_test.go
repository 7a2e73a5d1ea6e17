package hierarchy

import (
	"context"
	"io"
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

// TestGenerations: the first generation's certificate comes first, then
// each later one installed in the CA folder.
func TestGenerations(t *testing.T) {
	ctx := context.Background()
	c := testConfig(t.TempDir())
	if err := Init(ctx, c, &memToken{keys: map[string]memKey{}}, &memAudit{}, io.Discard); err != nil {
		t.Fatal(err)
	}
	gens, err := Generations(c.CertDir, "citizen")
	if err != nil || len(gens) != 1 || gens[0].Subject.CommonName != "Test citizen" {
		t.Fatalf("one generation: %v %v", gens, err)
	}
	// A second generation's certificate (the root's, as a stand-in).
	second, _ := generationPaths(c.CertDir, "citizen", 2)
	raw, err := os.ReadFile(CertPath(c.CertDir, "root"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(second, raw, 0o600); err != nil {
		t.Fatal(err)
	}
	gens, err = Generations(c.CertDir, "citizen")
	if err != nil || len(gens) != 2 || gens[0].Subject.CommonName != "Test citizen" || gens[1].Subject.CommonName != "Test root" {
		t.Fatalf("two generations: %v %v", gens, err)
	}
	if _, err := Generations(c.CertDir, "nobody"); err == nil {
		t.Fatal("generations of a CA without a certificate")
	}
}
