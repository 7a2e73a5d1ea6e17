package backup_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/thiqa/thiqa/backup"
)

// A server started while `thiqa audit compact` holds the data folder's
// exclusive lock is told so: the refusal named only a restore, which sent
// the operator looking for one that was not running.
func TestLockFolderSharedRefusalNamesCompact(t *testing.T) {
	dir := t.TempDir()
	release, err := backup.LockFolder(dir, true)
	if err != nil {
		t.Fatal(err)
	}
	defer release()
	_, err = backup.LockFolder(dir, false)
	if !errors.Is(err, backup.ErrFolderInUse) {
		t.Fatalf("shared lock beside an exclusive one: %v", err)
	}
	for _, s := range []string{"thiqa restore", "thiqa audit compact"} {
		if !strings.Contains(err.Error(), s) {
			t.Errorf("the refusal does not name %s: %v", s, err)
		}
	}
}

// A second exclusive lock (a compaction or restore beside a running
// compaction) names thiqa audit compact among the holders: it named only
// a server and a restore.
func TestLockFolderExclusiveRefusalNamesCompact(t *testing.T) {
	dir := t.TempDir()
	release, err := backup.LockFolder(dir, true)
	if err != nil {
		t.Fatal(err)
	}
	defer release()
	_, err = backup.LockFolder(dir, true)
	if !errors.Is(err, backup.ErrFolderInUse) || !strings.Contains(err.Error(), "thiqa audit compact") || !strings.Contains(err.Error(), "stop it first") {
		t.Fatalf("exclusive lock beside an exclusive one: %v", err)
	}
}
