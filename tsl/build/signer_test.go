package build

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestSignerCertificateFile: the certificate is written once, read back
// for its key, refused for another key, and never replaced.
func TestSignerCertificateFile(t *testing.T) {
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	other, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	path := filepath.Join(t.TempDir(), "tsl", "signer.pem")
	if _, err := ReadSignerCertificate(path, key.Public()); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("no file: %v", err)
	}
	if err := WriteSignerCertificate(path, key, "Thiqa TSP", nil, time.Now()); err != nil {
		t.Fatal(err)
	}
	cert, err := ReadSignerCertificate(path, key.Public())
	if err != nil || cert.Subject.CommonName == "" {
		t.Fatalf("read back: %v", err)
	}
	if _, err := ReadSignerCertificate(path, other.Public()); !errors.Is(err, ErrOtherKey) {
		t.Fatalf("another key: %v", err)
	}
	if err := WriteSignerCertificate(path, other, "Thiqa TSP", nil, time.Now()); !errors.Is(err, fs.ErrExist) {
		t.Fatalf("replaced: %v", err)
	}
}

// TestEnsureSignerCertificate: a missing certificate is written, one of the
// key is kept as it is, one of another key is refused and left alone.
func TestEnsureSignerCertificate(t *testing.T) {
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	other, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	path := filepath.Join(t.TempDir(), "tsl", "signer.pem")
	if err := EnsureSignerCertificate(path, key, "tsl-signer", "Thiqa TSP", nil, time.Now()); err != nil {
		t.Fatal(err)
	}
	first, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := EnsureSignerCertificate(path, key, "tsl-signer", "Thiqa TSP", nil, time.Now().Add(time.Hour)); err != nil {
		t.Fatalf("again: %v", err)
	}
	err = EnsureSignerCertificate(path, other, "other", "Thiqa TSP", nil, time.Now())
	if !errors.Is(err, ErrOtherKey) || !strings.Contains(err.Error(), "nothing was replaced") {
		t.Fatalf("another key: %v", err)
	}
	if now, _ := os.ReadFile(path); string(now) != string(first) {
		t.Fatal("the certificate was replaced")
	}
}
