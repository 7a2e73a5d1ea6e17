package identity

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/thiqa/thiqa/internal/audit"
)

// TestPairwiseSecret: created once (0600), kept afterwards, read back; a
// short or malformed secret is refused.
func TestPairwiseSecret(t *testing.T) {
	path := filepath.Join(t.TempDir(), "secrets", "pairwise")
	if created, err := CreatePairwiseSecret(path); err != nil || !created {
		t.Fatalf("first: %v %v", created, err)
	}
	raw, _ := os.ReadFile(path)
	if created, err := CreatePairwiseSecret(path); err != nil || created {
		t.Fatalf("second: %v %v", created, err)
	}
	if again, _ := os.ReadFile(path); string(again) != string(raw) {
		t.Fatal("the secret was replaced")
	}
	if st, _ := os.Stat(path); st.Mode().Perm() != 0o600 {
		t.Fatalf("mode %v", st.Mode())
	}
	if b, err := ParsePairwiseSecret(raw, path); err != nil || len(b) != 32 {
		t.Fatalf("parse: %d %v", len(b), err)
	}
	for _, bad := range []string{"abcd\n", "zz" + string(raw[2:])} {
		if _, err := ParsePairwiseSecret([]byte(bad), path); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

// fileAudit notes, for each record, whether the secret's file was there
// when it was appended; fail makes the next Append fail.
type fileAudit struct {
	path    string
	present []bool
	fail    bool
}

func (a *fileAudit) Append(_ context.Context, e audit.Entry) (audit.Record, error) {
	if a.fail {
		a.fail = false
		return audit.Record{}, errors.New("audit log down")
	}
	if e.Action != ActPairwiseSecretCreate || e.Object != a.path || e.Actor != "thiqa-init" {
		return audit.Record{}, fmt.Errorf("unexpected record %+v", e)
	}
	_, err := os.Stat(a.path)
	a.present = append(a.present, err == nil)
	return audit.Record{}, nil
}

// TestEnsurePairwiseSecretRecordsFirst: the creation is recorded before
// the secret is written, so a failed record leaves no secret and a run
// again records and writes it (the other order lost the record for good:
// the run again found the file and recorded nothing); a secret there
// already is not recorded again.
func TestEnsurePairwiseSecretRecordsFirst(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "secrets", "pairwise")
	log := &fileAudit{path: path, fail: true}
	if _, err := EnsurePairwiseSecret(ctx, path, log, "thiqa-init"); err == nil {
		t.Fatal("a failed record was no error")
	}
	if created, err := EnsurePairwiseSecret(ctx, path, log, "thiqa-init"); err != nil || !created {
		t.Fatalf("run again: %v %v", created, err)
	}
	if created, err := EnsurePairwiseSecret(ctx, path, log, "thiqa-init"); err != nil || created {
		t.Fatalf("third run: %v %v", created, err)
	}
	if len(log.present) != 1 || log.present[0] {
		t.Fatalf("records (file present at each): %v, want one, before the file", log.present)
	}
	if _, err := os.Stat(path); err != nil {
		t.Fatal(err)
	}
}
