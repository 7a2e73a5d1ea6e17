package verify

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"log/slog"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/thiqa/thiqa/verify/tsl"
)

// TestLoadTrustedLists: nothing named is no lists; an unreadable signer
// file is refused naming its configuration key or flag.
func TestLoadTrustedLists(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	resolve := func(p string) string { return filepath.Join(dir, p) }
	if lists, warnings, err := LoadTrustedLists(ctx, &Config{}, resolve, TrustedListOptions{}); lists != nil || warnings != nil || err != nil {
		t.Fatalf("nothing configured: %v %v %v", lists, warnings, err)
	}
	c := &Config{TrustedLists: []tsl.SourceConfig{{File: "list.xml", Signers: []string{"missing.pem"}}}}
	if _, _, err := LoadTrustedLists(ctx, c, resolve, TrustedListOptions{}); err == nil || !strings.Contains(err.Error(), "verify.trustedLists[0].signers") {
		t.Fatalf("a missing signer file: %v", err)
	}
	if _, _, err := LoadTrustedLists(ctx, nil, nil, TrustedListOptions{Files: []string{"x.xml"}, SignerFiles: []string{resolve("missing.pem")}}); err == nil || !strings.Contains(err.Error(), "--tsl-signer") {
		t.Fatalf("a missing --tsl-signer: %v", err)
	}
}

// TestLiveTrustedLists: without lists there is nothing to serve or
// refresh; a list that cannot be loaded at start is logged, and the
// verifier starts with no lists and the loop that reloads them.
func TestLiveTrustedLists(t *testing.T) {
	ctx := context.Background()
	if lists, refresh := (Config{}).LiveTrustedLists(ctx, nil, slog.New(slog.DiscardHandler)); lists != nil || refresh != nil {
		t.Fatal("lists served without any configured")
	}
	dir := t.TempDir()
	signer := filepath.Join(dir, "signer.pem")
	writeTestSigner(t, signer)
	var logs bytes.Buffer
	c := Config{TrustedLists: []tsl.SourceConfig{{File: "missing.xml", Signers: []string{"signer.pem"}}}, TrustedListsOffline: true}
	lists, refresh := c.LiveTrustedLists(ctx, func(p string) string { return filepath.Join(dir, p) }, slog.New(slog.NewTextHandler(&logs, nil)))
	live, ok := lists.(*tsl.Live)
	if !ok || refresh == nil || live.Current() != nil {
		t.Fatalf("lists %T, refresh %v", lists, refresh != nil)
	}
	if logs.Len() == 0 {
		t.Fatal("the failed load was not logged")
	}
}

// TestReadPEMFiles: the certificates of every file, in order.
func TestReadPEMFiles(t *testing.T) {
	dir := t.TempDir()
	a, b := filepath.Join(dir, "a.pem"), filepath.Join(dir, "b.pem")
	writeTestSigner(t, a)
	writeTestSigner(t, b)
	certs, err := ReadPEMFiles([]string{a, b, a})
	if err != nil || len(certs) != 3 || !certs[0].Equal(certs[2]) || certs[0].Equal(certs[1]) {
		t.Fatalf("ReadPEMFiles: %d certificates, %v", len(certs), err)
	}
	if _, err := ReadPEMFiles([]string{a, filepath.Join(dir, "missing.pem")}); err == nil {
		t.Fatal("a missing file was read")
	}
}

// writeTestSigner writes a new self-signed certificate to path (PEM).
func writeTestSigner(t *testing.T, path string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "List signer"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
}
