package hsm

import (
	"context"
	"errors"
	"path/filepath"
	"strings"
	"testing"

	"github.com/thiqa/thiqa/internal/testenv"
)

func TestOpenPingClose(t *testing.T) {
	tok := newTestToken(t, Config{})
	ctx := context.Background()
	if err := tok.Ping(ctx); err != nil {
		t.Fatalf("Ping: %v", err)
	}
	if got := tok.pool.size(); got < 2 {
		t.Fatalf("default pool size %d, want at least 2", got)
	}
	if err := tok.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if err := tok.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if err := tok.Ping(ctx); !errors.Is(err, ErrClosed) {
		t.Fatalf("Ping after Close = %v, want ErrClosed", err)
	}
	if _, err := tok.FindKey(ctx, "x"); !errors.Is(err, ErrClosed) {
		t.Fatalf("FindKey after Close = %v, want ErrClosed", err)
	}
}

func TestOpenTwiceSameToken(t *testing.T) {
	tok := newTestToken(t, Config{})
	tok2, err := Open(context.Background(), Config{ModulePath: tok.module, TokenLabel: tok.label, PIN: testUserPIN})
	if err != nil {
		t.Fatalf("second Open of the same token: %v", err)
	}
	sg, err := tok2.GenerateKey(context.Background(), "k", ECP256)
	if err != nil {
		t.Fatal(err)
	}
	mustSignVerify(t, sg)
	if err := tok2.Close(); err != nil {
		t.Fatal(err)
	}
	if err := tok.Ping(context.Background()); err != nil {
		t.Fatalf("first Token after the second closed: %v", err)
	}
}

func TestOpenWrongPIN(t *testing.T) {
	module := testenv.PKCS11Module(t)
	label := testenv.UniqueLabel("t")
	if err := InitToken(module, label, testSOPIN, testUserPIN); err != nil {
		t.Fatal(err)
	}
	const wrong = "wrong-pin-5555"
	tok, err := Open(context.Background(), Config{ModulePath: module, TokenLabel: label, PIN: wrong})
	if err == nil {
		tok.Close()
		t.Fatal("Open with a wrong PIN succeeded")
	}
	if !errors.Is(err, ErrPINIncorrect) {
		t.Fatalf("error %v is not ErrPINIncorrect", err)
	}
	if strings.Contains(err.Error(), wrong) || strings.Contains(err.Error(), testUserPIN) {
		t.Fatalf("error message leaks a PIN: %v", err)
	}
	if !strings.Contains(err.Error(), label) {
		t.Fatalf("error %q does not name the token", err)
	}
}

func TestOpenMissingModule(t *testing.T) {
	path := filepath.Join(t.TempDir(), "no-such-module.so")
	_, err := Open(context.Background(), Config{ModulePath: path, TokenLabel: "x", PIN: "1234"})
	if !errors.Is(err, ErrModuleNotFound) || !strings.Contains(err.Error(), path) {
		t.Fatalf("Open with a missing module: %v; want ErrModuleNotFound naming %s", err, path)
	}
	// A file that is not a shared library.
	bogus := filepath.Join(t.TempDir(), "bogus.so")
	if err := writeFile(bogus, "not ELF"); err != nil {
		t.Fatal(err)
	}
	_, err = Open(context.Background(), Config{ModulePath: bogus, TokenLabel: "x", PIN: "1234"})
	if !errors.Is(err, ErrModuleNotFound) || !strings.Contains(err.Error(), bogus) {
		t.Fatalf("Open with a bogus module: %v", err)
	}
	if err := InitToken(path, "x", "1", "2"); !errors.Is(err, ErrModuleNotFound) {
		t.Fatalf("InitToken with a missing module: %v", err)
	}
}

func TestOpenUnknownToken(t *testing.T) {
	tok := newTestToken(t, Config{}) // at least one labelled token exists
	missing := testenv.UniqueLabel("absent")
	_, err := Open(context.Background(), Config{ModulePath: tok.module, TokenLabel: missing, PIN: testUserPIN})
	if !errors.Is(err, ErrTokenNotFound) {
		t.Fatalf("Open of an unknown token: %v, want ErrTokenNotFound", err)
	}
	if !strings.Contains(err.Error(), missing) || !strings.Contains(err.Error(), tok.label) {
		t.Fatalf("error %q should name the missing label and list the available ones", err)
	}
}

// TestTokenPresent: TokenPresent finds an initialised token by its label
// and says false for a label no token has; a missing module is an error.
func TestTokenPresent(t *testing.T) {
	tok := newTestToken(t, Config{})
	if ok, err := TokenPresent(tok.module, tok.label); !ok || err != nil {
		t.Fatalf("TokenPresent of the open token: %v, %v", ok, err)
	}
	if ok, err := TokenPresent(tok.module, tok.label+"-none"); ok || err != nil {
		t.Fatalf("TokenPresent of a label no token has: %v, %v", ok, err)
	}
	if _, err := TokenPresent(filepath.Join(t.TempDir(), "missing.so"), tok.label); !errors.Is(err, ErrModuleNotFound) {
		t.Fatalf("TokenPresent with a missing module: %v", err)
	}
	// Listing logged nothing in or out: the token still answers.
	if err := tok.Ping(context.Background()); err != nil {
		t.Fatal(err)
	}
}

func TestInitTokenExists(t *testing.T) {
	tok := newTestToken(t, Config{})
	err := InitToken(tok.module, tok.label, testSOPIN, testUserPIN)
	if !errors.Is(err, ErrTokenExists) || !strings.Contains(err.Error(), tok.label) {
		t.Fatalf("InitToken of an existing label: %v, want ErrTokenExists", err)
	}
	// The existing token is untouched: still opens with its PIN.
	if err := tok.Ping(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := InitToken(tok.module, strings.Repeat("x", 33), "1", "2"); err == nil {
		t.Fatal("InitToken accepted a 33-byte label")
	}
}
