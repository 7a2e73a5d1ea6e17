package keyring

import (
	"context"
	"errors"
	"io/fs"
	"log/slog"
	"strings"
	"sync"
	"testing"

	"github.com/thiqa/thiqa/hsm"
	"github.com/thiqa/thiqa/internal/audit"
	"github.com/thiqa/thiqa/internal/auth"
	"github.com/thiqa/thiqa/internal/testenv"
)

// recorder is an Auditor keeping the entries.
type recorder struct {
	mu      sync.Mutex
	entries []audit.Entry
	err     error
}

func (r *recorder) Append(_ context.Context, e audit.Entry) (audit.Record, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.err != nil {
		return audit.Record{}, r.err
	}
	r.entries = append(r.entries, e)
	return audit.Record{}, nil
}

func testToken(t *testing.T) *hsm.Token {
	t.Helper()
	module := testenv.PKCS11Module(t)
	label := testenv.UniqueLabel("kr")
	if err := hsm.InitToken(module, label, "so-secret-8642", "user-secret-9731"); err != nil {
		t.Fatalf("InitToken: %v", err)
	}
	tok, err := hsm.Open(context.Background(), hsm.Config{ModulePath: module, TokenLabel: label, PIN: "user-secret-9731",
		Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { _ = tok.Close() })
	return tok
}

func TestEnsureAndRing(t *testing.T) {
	ctx := context.Background()
	tok := testToken(t)
	k, generated, err := Ensure(ctx, tok, "svc", hsm.ECP256)
	if err != nil || !generated {
		t.Fatalf("Ensure: %v %v", generated, err)
	}
	again, generated, err := Ensure(ctx, tok, "svc", hsm.RSA2048)
	if err != nil || generated || again.URI() != k.URI() {
		t.Fatalf("Ensure again: %v %v", generated, err)
	}
	rec := &recorder{}
	if err := Generated(ctx, rec, k); err != nil || len(rec.entries) != 1 || rec.entries[0].Action != "key.generate" || rec.entries[0].Object != k.URI() {
		t.Fatalf("Generated: %v %+v", err, rec.entries)
	}
	r := Ring{Token: tok, KeyType: hsm.ECP256, Audit: rec}
	if _, err := r.Find(ctx, "unit-1"); !errors.Is(err, fs.ErrNotExist) || !errors.Is(err, hsm.ErrKeyNotFound) {
		t.Fatalf("Find of a missing key: %v", err)
	}
	if _, err := r.Generate(ctx, "unit-1"); err != nil || len(rec.entries) != 2 {
		t.Fatalf("Generate: %v %d", err, len(rec.entries))
	}
	if s, err := r.Find(ctx, "unit-1"); err != nil || s.Label() != "unit-1" {
		t.Fatalf("Find: %v", err)
	}
	labels, err := r.Labels(ctx)
	if err != nil || strings.Join(labels, ",") != "svc,unit-1" && strings.Join(labels, ",") != "unit-1,svc" {
		t.Fatalf("Labels: %v %v", labels, err)
	}
	rec.err = errors.New("disk full")
	if _, err := r.Generate(ctx, "unit-2"); err == nil || !strings.Contains(err.Error(), "writing audit record: disk full") {
		t.Fatalf("Generate with a failing audit: %v", err)
	}
}

func TestCredentials(t *testing.T) {
	tok := testToken(t)
	rec := &recorder{}
	c := &Credentials{Token: tok, KeyType: hsm.ECP256, Audit: rec}
	ctx := auth.WithPrincipal(context.Background(), &auth.Principal{Subject: "officer-1"})
	id, pub, err := c.GenerateKey(ctx, "citizen-signing")
	if err != nil || pub == nil || !strings.HasPrefix(id, CredentialPrefix) || len(id) != len(CredentialPrefix)+32 {
		t.Fatalf("GenerateKey: %q %v", id, err)
	}
	if e := rec.entries[0]; e.Actor != "officer-1" || e.Action != "key.generate" || detail(e, "credentialID") != id || detail(e, "profile") != "citizen-signing" {
		t.Fatalf("generation record: %+v", e)
	}
	if err := c.DeleteKey(ctx, id); err != nil {
		t.Fatal(err)
	}
	if _, err := tok.FindKey(ctx, id); !errors.Is(err, hsm.ErrKeyNotFound) {
		t.Fatalf("key still there: %v", err)
	}
	if err := c.DestroyKey(ctx, id, "re-keyed"); err != nil || len(rec.entries) != 2 {
		t.Fatalf("DestroyKey of a key already gone: %v, %d records", err, len(rec.entries))
	}
	id2, _, err := c.GenerateKey(context.Background(), "p")
	if err != nil || rec.entries[2].Actor != "unknown" {
		t.Fatalf("GenerateKey without a caller: %v %+v", err, rec.entries[2])
	}
	if err := c.DestroyKey(ctx, id2, "re-keyed"); err != nil || detail(rec.entries[3], "reason") != "re-keyed" {
		t.Fatalf("DestroyKey: %v %+v", err, rec.entries)
	}
}

// detail is the detail named k of e (a map of the generator's details).
func detail(e audit.Entry, k string) any {
	m, _ := e.Details.(map[string]any)
	return m[k]
}

// labels is a CredentialLabels from a map.
type labels map[string]string

func (l labels) CredentialKeyLabel(_ context.Context, id string) (string, error) {
	if id == "cred-gone" {
		return "", errors.New("no certificate")
	}
	return l[id], nil
}

// TestResolver: a credential's key is found by its ID, or by the label its
// certificate names after a re-key, and kept.
func TestResolver(t *testing.T) {
	ctx := context.Background()
	tok := testToken(t)
	if _, _, err := Ensure(ctx, tok, "cred-a", hsm.ECP256); err != nil {
		t.Fatal(err)
	}
	if _, _, err := Ensure(ctx, tok, "cred-b-2", hsm.ECP256); err != nil {
		t.Fatal(err)
	}
	r := NewResolver(tok, labels{"cred-b": "cred-b-2"}, "citizen-auth")
	a, err := r.Key(ctx, "cred-a")
	if err != nil || a.(*hsm.Signer).Label() != "cred-a" {
		t.Fatalf("by ID: %v", err)
	}
	if again, err := r.Key(ctx, "cred-a"); err != nil || again != a {
		t.Fatalf("not kept: %v", err)
	}
	if b, err := r.Key(ctx, "cred-b"); err != nil || b.(*hsm.Signer).Label() != "cred-b-2" {
		t.Fatalf("re-keyed: %v", err)
	}
	if _, err := r.Key(ctx, "cred-none"); !errors.Is(err, hsm.ErrKeyNotFound) {
		t.Fatalf("missing key: %v", err)
	}
	if _, err := r.Key(ctx, "cred-gone"); err == nil {
		t.Fatal("a failing label look-up was ignored")
	}
	if _, err := NewResolver(tok, nil, "x").Key(ctx, "cred-b-2"); err != nil {
		t.Fatalf("without labels: %v", err)
	}
}

func TestProfileKeys(t *testing.T) {
	ctx := context.Background()
	tok := testToken(t)
	if _, _, err := Ensure(ctx, tok, "cred-seal", hsm.ECP256); err != nil {
		t.Fatal(err)
	}
	keys := ProfileKeys(tok, "organisation-seal")
	for _, profile := range []string{"organisation-seal", "citizen-signing"} {
		k, err := keys(ctx, "cred-seal", profile)
		if err != nil || k.(*hsm.Signer).Label() != "cred-seal" {
			t.Fatalf("%s: %v", profile, err)
		}
	}
	if _, err := keys(ctx, "cred-none", "citizen-signing"); !errors.Is(err, hsm.ErrKeyNotFound) {
		t.Fatalf("missing key: %v", err)
	}
}

// TestKeyDeleteNamesTheCaller: the key.delete records of a refused
// keyInHSM request (DeleteKey) and of an officer's re-key (DestroyKey) name
// the authenticated caller whose request destroyed the key, as the
// key.generate record names who made it; "ca" when there is none.
func TestKeyDeleteNamesTheCaller(t *testing.T) {
	tok := testToken(t)
	rec := &recorder{}
	c := &Credentials{Token: tok, KeyType: hsm.ECP256, Audit: rec}
	officer := auth.WithPrincipal(context.Background(), &auth.Principal{Subject: "officer-1"})
	for _, tc := range []struct {
		ctx   context.Context
		actor string
	}{{officer, "officer-1"}, {context.Background(), "ca"}} {
		for _, destroy := range []bool{false, true} {
			id, _, err := c.GenerateKey(officer, "citizen-signing")
			if err != nil {
				t.Fatal(err)
			}
			if destroy {
				err = c.DestroyKey(tc.ctx, id, "re-keyed")
			} else {
				err = c.DeleteKey(tc.ctx, id)
			}
			if err != nil {
				t.Fatal(err)
			}
			e := rec.entries[len(rec.entries)-1]
			if e.Action != "key.delete" || e.Object != id || e.Actor != tc.actor {
				t.Fatalf("destroy %v: record %+v, want actor %q", destroy, e, tc.actor)
			}
		}
	}
}
