package main

import (
	"context"
	"errors"
	"io"
	"path/filepath"
	"strings"
	"testing"

	"github.com/thiqa/thiqa/backup"
	"github.com/thiqa/thiqa/cmd/thiqa/internal/config"
)

// TestWritingVerbsHoldTheFolder: the CLI verbs that write to a data folder
// hold its shared lock while they run, the lock `thiqa serve` holds. A
// restore (its exclusive lock) is refused while one runs, and the verbs
// are refused while a restore (or thiqa audit compact) holds the folder;
// they took no lock, so a restore could replace the folder under them.
// Beside a running server (its shared lock) they still run.
func TestWritingVerbsHoldTheFolder(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	initData(t, dir)
	ctx := context.Background()
	env := &cliEnv{stdout: io.Discard, stderr: io.Discard}
	cfg, err := loadConfig(dir)
	if err != nil {
		t.Fatal(err)
	}

	// A verb's store (thiqa oidc, notify retire, ca crl import) and
	// platform (issue, enrol, seal, extend, tsl build): restore's lock is
	// refused while either is open, and taken once it is closed.
	for name, open := range map[string]func(context.Context, *cliEnv, *config.Config) (*platform, func(), error){
		"store": openOperatorStore, "platform": openOperatorPlatform,
	} {
		_, closeAll, err := open(ctx, env, cfg)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if release, err := backup.LockFolder(dir, true); !errors.Is(err, backup.ErrFolderInUse) {
			if err == nil {
				release()
			}
			closeAll()
			t.Fatalf("a restore's lock beside an operator verb's %s: %v", name, err)
		}
		closeAll()
		release, err := backup.LockFolder(dir, true)
		if err != nil {
			t.Fatalf("a restore's lock once the verb's %s is closed: %v", name, err)
		}
		release()
	}

	// While a restore holds the folder, the writing verbs are refused and
	// say so.
	release, err := backup.LockFolder(dir, true)
	if err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{
		{"revoke", "--data", dir, "--serial", "01"},
		{"enrol", "void", "--data", dir, "AAAAAAAAAAAAAAAA"},
		{"oidc", "client", "list", "--data", dir},
		{"audit", "archive", "--data", dir, "--through", "1", "--out", filepath.Join(t.TempDir(), "a.jsonl")},
		{"backup", "--data", dir, "--out", filepath.Join(t.TempDir(), "b.tar.gz")},
	} {
		r := thiqa(t, nil, args...)
		if r.code == 0 || !strings.Contains(r.stderr, "being restored") {
			t.Errorf("thiqa %v beside a restore: exit %d\n%s", args, r.code, r.stderr)
		}
	}
	release()

	// Beside a running server (its shared lock) a writing verb runs.
	release, err = backup.LockFolder(dir, false)
	if err != nil {
		t.Fatal(err)
	}
	defer release()
	r := thiqa(t, nil, "revoke", "--data", dir, "--serial", "01")
	if strings.Contains(r.stderr, "in use") || strings.Contains(r.stderr, "being restored") {
		t.Fatalf("thiqa revoke beside a server's lock: exit %d\n%s", r.code, r.stderr)
	}
}
