package audit_test

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/thiqa/thiqa/internal/audit"
)

// TestVerifyAll: a chain without checkpoints is OK but not anchored; with
// a checkpoint signed by the published key it is OK and anchored; an
// edited record is BROKEN. PublishCheckpointKey keeps a matching file and
// refuses another key.
func TestVerifyAll(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	st := audit.NewFileStore(filepath.Join(dir, "audit.log"))
	l := newLog(t, st, nil)
	appendN(t, l, 3, "officer")
	cps, pubFile := filepath.Join(dir, "checkpoints"), filepath.Join(dir, "cp", "key.pem")
	check := func(wantOK bool, want string) {
		t.Helper()
		var out bytes.Buffer
		ok, err := audit.VerifyAll(ctx, st, cps, pubFile, &out)
		if err != nil || ok != wantOK || !strings.Contains(out.String(), want) {
			t.Fatalf("VerifyAll: %v %v\n%s\nwant %q", ok, err, out.String(), want)
		}
	}
	check(true, "audit checkpoints: none")

	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err := audit.PublishCheckpointKey(pubFile, key.Public()); err != nil {
		t.Fatal(err)
	}
	if err := audit.PublishCheckpointKey(pubFile, key.Public()); err != nil {
		t.Fatalf("publishing the same key again: %v", err)
	}
	other, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err := audit.PublishCheckpointKey(pubFile, other.Public()); err == nil {
		t.Fatal("another key replaced the published one")
	}
	w, err := audit.NewCheckpointWriter(st, key, cps, audit.CheckpointWriterOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := w.Checkpoint(ctx); err != nil {
		t.Fatal(err)
	}
	check(true, "audit checkpoints OK")

	raw, _ := os.ReadFile(st.Path())
	if err := os.WriteFile(st.Path(), bytes.Replace(raw, []byte("officer"), []byte("OFFICER"), 1), 0o600); err != nil {
		t.Fatal(err)
	}
	check(false, "audit chain BROKEN")
}
