package config

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/thiqa/thiqa/internal/testenv"
)

// TestWriteAdoptCeremony: ceremony.yaml names the token and the key
// findKey found on it; a token without the key leaves nothing behind; a
// run again returns the file there (without looking for the key again)
// unless it names another token.
func TestWriteAdoptCeremony(t *testing.T) {
	ctx := context.Background()
	module := testenv.PKCS11Module(t)
	pin := filepath.Join(t.TempDir(), "user.pin")
	if err := os.WriteFile(pin, []byte("1234\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(t.TempDir(), "ceremony")
	tok := AdoptToken{Module: module, Label: "copy", PINFile: pin}
	errNoKey := errors.New("no key of the root")
	if _, err := WriteAdoptCeremony(ctx, dir, tok, "http://pki.test", func(context.Context, *Ceremony) (string, error) { return "", errNoKey }); !errors.Is(err, errNoKey) {
		t.Fatalf("without the key: %v", err)
	}
	if _, err := os.Stat(dir); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("the refused run left %s: %v", dir, err)
	}
	found := func(context.Context, *Ceremony) (string, error) { return "root-ca", nil }
	cfg, err := WriteAdoptCeremony(ctx, dir, tok, "http://pki.test", found)
	if err != nil {
		t.Fatal(err)
	}
	loaded, err := LoadCeremony(dir)
	if err != nil || loaded.RootKey != "pkcs11:token=copy;object=root-ca" || loaded.PublicBaseURL != "http://pki.test" || loaded.HSM.PINFile != pin || cfg.Dir() != dir {
		t.Fatalf("ceremony.yaml: %+v %v", loaded, err)
	}
	again, err := WriteAdoptCeremony(ctx, dir, tok, "http://pki.test", func(context.Context, *Ceremony) (string, error) {
		t.Fatal("a run again looked for the key")
		return "", nil
	})
	if err != nil || again.RootKey != loaded.RootKey {
		t.Fatalf("run again: %v", err)
	}
	tok.Label = "other"
	if _, err := WriteAdoptCeremony(ctx, dir, tok, "http://pki.test", found); !errors.Is(err, ErrOtherToken) {
		t.Fatalf("another token: %v", err)
	}
}
