package hierarchy

import (
	"context"
	"errors"
	"io"
	"os"
	"strings"
	"testing"
)

// offlineConfig is a data folder of an offline root whose issuing CA
// waits for its certificate (InitOffline has run).
func offlineConfig(t *testing.T) (Config, *memToken) {
	t.Helper()
	ctx := context.Background()
	dev := testConfig(t.TempDir())
	devTok := &memToken{keys: map[string]memKey{}}
	if err := Init(ctx, dev, devTok, &memAudit{}, io.Discard); err != nil {
		t.Fatal(err)
	}
	parts, err := Find(ctx, dev, devTok)
	if err != nil {
		t.Fatal(err)
	}
	c := testConfig(t.TempDir())
	c.RootOffline, c.Root.Key, c.Root.KeyLabel = true, "", ""
	if _, err := InstallRoot(c, parts[0].Cert); err != nil {
		t.Fatal(err)
	}
	tok := &memToken{keys: map[string]memKey{}}
	if err := Init(ctx, c, tok, &memAudit{}, io.Discard); !errors.Is(err, ErrPending) {
		t.Fatalf("InitOffline: %v", err)
	}
	return c, tok
}

// TestStaleCSRRefused: a CSR left in the data folder for a key the token
// no longer holds is never handed to the key ceremony again as the CSR of
// a new key: InitOffline refuses to make a key beside it, and InitOffline
// and Rollover refuse it as the CSR of another key, with nothing changed.
func TestStaleCSRRefused(t *testing.T) {
	ctx := context.Background()
	c, tok := offlineConfig(t)
	csr := c.CertDir + "/citizen.csr"
	stale, err := os.ReadFile(csr)
	if err != nil {
		t.Fatal(err)
	}

	// The key is gone (a new token): no new key beside the old CSR.
	delete(tok.keys, "citizen-ca")
	err = Init(ctx, c, tok, &memAudit{}, io.Discard)
	if err == nil || errors.Is(err, ErrPending) || !strings.Contains(err.Error(), "is the CSR of a key the token does not hold") {
		t.Fatalf("InitOffline beside a stale CSR: %v", err)
	}
	if len(tok.keys) != 0 {
		t.Fatal("InitOffline generated a key beside the CSR of another")
	}

	// Another key under the label: its CSR is not the one in the folder.
	if _, err := tok.GenerateKey(ctx, "citizen-ca", "ec-p256"); err != nil {
		t.Fatal(err)
	}
	log := &memAudit{}
	err = Init(ctx, c, tok, log, io.Discard)
	if err == nil || errors.Is(err, ErrPending) || !strings.Contains(err.Error(), "is the CSR of another key than") {
		t.Fatalf("InitOffline with the CSR of another key: %v", err)
	}
	err = Rollover(ctx, c, tok, log, "citizen", "cli:test", io.Discard)
	if err == nil || !strings.Contains(err.Error(), "is the CSR of another key than") {
		t.Fatalf("Rollover with the CSR of another key: %v", err)
	}
	if now, _ := os.ReadFile(csr); string(now) != string(stale) || len(log.actions) != 0 {
		t.Fatalf("a refusal changed the CSR or recorded %v", log.actions)
	}

	// Moved away: the CSR of the key on the token is written.
	if err := os.Remove(csr); err != nil {
		t.Fatal(err)
	}
	if err := Init(ctx, c, tok, &memAudit{}, io.Discard); !errors.Is(err, ErrPending) {
		t.Fatalf("InitOffline after the stale CSR moved away: %v", err)
	}
	g, err := findGeneration(ctx, c, tok, c.Issuers[0], 1)
	if err != nil || checkCSR(g) != nil {
		t.Fatalf("the new CSR: %v", err)
	}
}
