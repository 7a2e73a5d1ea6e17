package atomicfile

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
)

func TestWriteNewNeverReplaces(t *testing.T) {
	p := filepath.Join(t.TempDir(), "f")
	if err := WriteNew(p, []byte("one"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := WriteNew(p, []byte("two"), 0o600); !errors.Is(err, os.ErrExist) {
		t.Fatalf("a second WriteNew: %v, want os.ErrExist", err)
	}
	if b, _ := os.ReadFile(p); string(b) != "one" {
		t.Fatalf("the file holds %q", b)
	}
	if err := Write(p, []byte("three"), 0o644); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(p); string(b) != "three" {
		t.Fatalf("Write left %q", b)
	}
	if err := WriteNew(filepath.Join(t.TempDir(), "no", "such", "folder"), nil, 0o600); err == nil {
		t.Fatal("WriteNew into a missing folder succeeded")
	}
}

// TestCreatedUndo: a folder that did not exist goes whole; in an existing
// one only what was added goes, and what was there stays.
func TestCreatedUndo(t *testing.T) {
	parent := t.TempDir()
	dir := filepath.Join(parent, "new")
	c := NewCreated(dir)
	if err := os.MkdirAll(filepath.Join(dir, "sub"), 0o700); err != nil {
		t.Fatal(err)
	}
	c.Undo()
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Fatalf("new folder left behind: %v", err)
	}
	kept, made := filepath.Join(parent, "kept"), filepath.Join(parent, "made")
	for _, p := range []string{kept, made} {
		if err := os.WriteFile(p, []byte("x"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	c = NewCreated(parent)
	c.Add(made)
	c.Undo()
	if _, err := os.Stat(made); !os.IsNotExist(err) {
		t.Fatalf("created file left behind: %v", err)
	}
	if _, err := os.Stat(kept); err != nil {
		t.Fatalf("a file that was there went: %v", err)
	}
}
