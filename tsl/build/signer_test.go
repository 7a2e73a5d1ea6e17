package build

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"errors"
	"io/fs"
	"path/filepath"
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
