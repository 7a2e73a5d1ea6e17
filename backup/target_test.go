package backup

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
)

// TestMoveFilesUndoesItsFolders checks that a move that fails half-way
// leaves the data folder as it was: the files moved so far go back, and
// the folders created for them are removed, so that the restore can be
// run again (an empty "ca" left behind made the next one refuse the
// folder as not empty).
func TestMoveFilesUndoesItsFolders(t *testing.T) {
	from, to := t.TempDir(), t.TempDir()
	for _, p := range []string{filepath.Join(from, "ca", "sub", "root.pem"), filepath.Join(from, "secrets", "key"), filepath.Join(to, "secrets", "key")} {
		if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(p), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	err := moveFiles(from, to, []string{filepath.Join("ca", "sub", "root.pem"), filepath.Join("secrets", "key")})
	if !errors.Is(err, ErrTargetNotEmpty) {
		t.Fatalf("moving onto an existing file: %v", err)
	}
	if _, err := os.Stat(filepath.Join(from, "ca", "sub", "root.pem")); err != nil {
		t.Errorf("the moved file did not go back: %v", err)
	}
	entries, err := os.ReadDir(to)
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 1 || entries[0].Name() != "secrets" {
		var names []string
		for _, e := range entries {
			names = append(names, e.Name())
		}
		t.Errorf("after the failed move the folder holds %q, want only what it held before (secrets)", names)
	}
}
