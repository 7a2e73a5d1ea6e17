package backup_test

import (
	"bytes"
	"context"
	"crypto"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/thiqa/thiqa/backup"
	"github.com/thiqa/thiqa/internal/audit"
	"github.com/thiqa/thiqa/store/storetest"
)

// TestRestoreThroughALinkedDataFolder restores into --data L where L is a
// link to the prepared data folder (/var/lib/thiqa -> /srv/thiqa, which
// thiqa backup follows): the files land in the folder the link names and
// the link stays. The restore refused it: "the restore target is not
// empty: L is not a folder".
func TestRestoreThroughALinkedDataFolder(t *testing.T) {
	ctx := context.Background()
	src := newSource(t, storetest.Dialects()[0])
	if _, err := src.log.Append(ctx, audit.Entry{Actor: "test", Action: "test.act", Object: "1", Outcome: audit.OutcomeSuccess}); err != nil {
		t.Fatal(err)
	}
	out := src.backUp(t)

	parent := t.TempDir()
	real := filepath.Join(parent, "srv-thiqa")
	if err := os.Mkdir(real, 0o700); err != nil {
		t.Fatal(err)
	}
	link := filepath.Join(parent, "thiqa")
	if err := os.Symlink(real, link); err != nil {
		t.Fatal(err)
	}
	host := &testHost{data: link, cfg: src.d.NewConfig(t), cp: src.cpKey, keys: map[string]crypto.Signer{"root": src.rootKey}}
	if _, err := backup.Restore(ctx, backup.RestoreOptions{Archive: out, Data: link, ConfigFile: "thiqa.yaml", Host: host, Actor: "test"}); err != nil {
		t.Fatalf("restore through a link to the data folder: %v", err)
	}
	if _, err := os.Stat(filepath.Join(real, "ca", "root.pem")); err != nil {
		t.Errorf("root certificate not restored into the linked folder: %v", err)
	}
	if info, err := os.Lstat(link); err != nil || info.Mode()&os.ModeSymlink == 0 {
		t.Errorf("the link %s was replaced (%v)", link, err)
	}

	// A link to a folder that does not exist is refused, nothing made.
	dangling := filepath.Join(parent, "dangling")
	if err := os.Symlink(filepath.Join(parent, "missing"), dangling); err != nil {
		t.Fatal(err)
	}
	host.data = dangling
	if _, err := backup.Restore(ctx, backup.RestoreOptions{Archive: out, Data: dangling, ConfigFile: "thiqa.yaml", Host: host, Actor: "test"}); err == nil {
		t.Error("a restore through a link to a missing folder succeeded")
	}
	if _, err := os.Lstat(filepath.Join(parent, "missing")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the missing folder was created: %v", err)
	}
}

// TestRestoreWithAnOfflineRoot restores the backup of a deployment whose
// root key is offline (thiqa init --root-cert): its configuration names no
// root key and its token holds none, so the token is the deployment's by
// the checkpoint key that signed the manifest. The restore asked for the
// root key ("key URI \"\": hsm: key URI must start with \"pkcs11:\"") and
// could not restore such a deployment at all.
func TestRestoreWithAnOfflineRoot(t *testing.T) {
	ctx := context.Background()
	src := newSource(t, storetest.Dialects()[0])
	out := src.backUp(t)

	dst := filepath.Join(t.TempDir(), "thiqa")
	host := &testHost{data: dst, cfg: src.d.NewConfig(t), cp: src.cpKey, keys: map[string]crypto.Signer{}, offline: true}
	r, err := backup.Restore(ctx, backup.RestoreOptions{Archive: out, Data: dst, ConfigFile: "thiqa.yaml", Host: host, Actor: "test"})
	if err != nil {
		t.Fatalf("restore of an offline-root deployment: %v", err)
	}
	var rep bytes.Buffer
	r.Report(&rep)
	if strings.Contains(rep.String(), "holds its key") || !strings.Contains(rep.String(), "offline") {
		t.Errorf("the report says:\n%s\nwant the root named offline, not its key on the token", rep.String())
	}

	// The checkpoint key still has to be the deployment's.
	other := &testHost{data: filepath.Join(t.TempDir(), "thiqa"), cfg: src.d.NewConfig(t), cp: newKey(t), keys: map[string]crypto.Signer{}, offline: true}
	if _, err := backup.Restore(ctx, backup.RestoreOptions{Archive: out, Data: other.data, ConfigFile: "thiqa.yaml", Host: other, Actor: "test"}); !errors.Is(err, backup.ErrOtherDeployment) {
		t.Errorf("a token with another checkpoint key: %v, want ErrOtherDeployment", err)
	}
}
