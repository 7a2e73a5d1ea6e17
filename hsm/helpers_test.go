package hsm

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/asn1"
	"log/slog"
	"math/big"
	"os"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/thiqa/thiqa/internal/testenv"
)

const (
	testSOPIN   = "so-secret-8642"
	testUserPIN = "user-secret-9731"
)

// newTestToken initialises a fresh SoftHSM token and opens it with cfg
// (module, label and PIN filled in). It is closed when the test ends.
func newTestToken(t testing.TB, cfg Config) *Token {
	t.Helper()
	module := testenv.PKCS11Module(t)
	label := testenv.UniqueLabel("t")
	if err := InitToken(module, label, testSOPIN, testUserPIN); err != nil {
		t.Fatalf("InitToken: %v", err)
	}
	cfg.ModulePath, cfg.TokenLabel, cfg.PIN = module, label, testUserPIN
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelWarn}))
	}
	tok, err := Open(context.Background(), cfg)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { _ = tok.Close() })
	return tok
}

// testWriter sends log lines to t.Log; it also records them so tests can
// check what was logged.
type testWriter struct{ t testing.TB }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

func newRegistry() *prometheus.Registry { return prometheus.NewRegistry() }

var testDigest = sha256.Sum256([]byte("thiqa test message"))

// mustSignVerify signs testDigest with SHA-256 and checks the signature
// with Go's own verifiers.
func mustSignVerify(t testing.TB, sg *Signer) {
	t.Helper()
	sig, err := sg.Sign(nil, testDigest[:], crypto.SHA256)
	if err != nil {
		t.Fatalf("Sign with %s: %v", sg.Label(), err)
	}
	switch pub := sg.Public().(type) {
	case *ecdsa.PublicKey:
		if !ecdsa.VerifyASN1(pub, testDigest[:], sig) {
			t.Fatalf("ECDSA signature by %s does not verify", sg.Label())
		}
	case *rsa.PublicKey:
		if err := rsa.VerifyPKCS1v15(pub, crypto.SHA256, testDigest[:], sig); err != nil {
			t.Fatalf("RSA signature by %s does not verify: %v", sg.Label(), err)
		}
	default:
		t.Fatalf("unexpected public key %T", pub)
	}
}

func writeFile(path, body string) error { return os.WriteFile(path, []byte(body), 0o600) }

func marshalRS(raw []byte) []byte {
	n := len(raw) / 2
	out, err := asn1.Marshal(struct{ R, S *big.Int }{new(big.Int).SetBytes(raw[:n]), new(big.Int).SetBytes(raw[n:])})
	if err != nil {
		panic(err)
	}
	return out
}

const cryptoSHA256 = crypto.SHA256

func rsaVerify(pub crypto.PublicKey, sig []byte) bool {
	k, ok := pub.(*rsa.PublicKey)
	return ok && rsa.VerifyPKCS1v15(k, crypto.SHA256, testDigest[:], sig) == nil
}
