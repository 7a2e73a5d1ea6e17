package main

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/thiqa/thiqa/backup"
)

// TestRetireOnlineMissingFolder: thiqa ca root retire-online with a --data
// that does not exist says the folder is not initialised, as before it
// took the folder's lock; it said a running thiqa serve had to be stopped
// ("needs every thiqa serve of the deployment stopped: locking the data
// folder …: no such file or directory").
func TestRetireOnlineMissingFolder(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "missing")
	proof := filepath.Join(t.TempDir(), "root.crl")
	if err := os.WriteFile(proof, []byte("not read"), 0o600); err != nil {
		t.Fatal(err)
	}
	var stderr bytes.Buffer
	err := caRootRetireOnline(context.Background(), &cliEnv{stdout: io.Discard, stderr: &stderr}, []string{"--data", dir, "--crl", proof})
	if err == nil || errors.Is(err, backup.ErrFolderInUse) || strings.Contains(err.Error(), "thiqa serve") || !strings.Contains(err.Error(), "not initialised") {
		t.Fatalf("retire-online on a missing folder: %v", err)
	}
	if _, statErr := os.Lstat(dir); !errors.Is(statErr, os.ErrNotExist) {
		t.Fatalf("the missing folder was created: %v", statErr)
	}
}
