package atomicfile

import (
	"errors"
	"os"
	"path/filepath"
	"syscall"
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

// TestWriteNewWhole: the file appears only whole, in the last step (the
// link); when that step does not happen (a crash, a full disk) there is
// no file, not a torn one, and no temporary file either. Without hard
// links the file is written in place.
func TestWriteNewWhole(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "ca.pem")
	// Up to the link, a crash leaves no ca.pem: the whole, synced data
	// waits in the temporary file.
	err := writeNew(p, []byte("certificate"), 0o644, func(oldname, newname string) error {
		if _, err := os.Stat(p); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("ca.pem exists before the last step: %v", err)
		}
		if b, err := os.ReadFile(oldname); err != nil || string(b) != "certificate" {
			t.Errorf("before it appears the file holds %q (%v)", b, err)
		}
		return os.Link(oldname, newname)
	})
	if b, rerr := os.ReadFile(p); err != nil || rerr != nil || string(b) != "certificate" {
		t.Fatalf("WriteNew: %v; the file holds %q (%v)", err, b, rerr)
	}
	if err := os.Remove(p); err != nil {
		t.Fatal(err)
	}
	// No hard links (EPERM on FAT): the file is written in place, whole.
	err = writeNew(p, []byte("certificate"), 0o644, func(string, string) error {
		return &os.LinkError{Op: "link", Err: syscall.EPERM}
	})
	if b, rerr := os.ReadFile(p); err != nil || rerr != nil || string(b) != "certificate" {
		t.Fatalf("WriteNew without links: %v; the file holds %q (%v)", err, b, rerr)
	}
	if err := os.Remove(p); err != nil {
		t.Fatal(err)
	}
	err = writeNew(p, []byte("certificate"), 0o644, func(string, string) error {
		return &os.LinkError{Op: "link", Err: os.ErrExist}
	})
	if !errors.Is(err, os.ErrExist) {
		t.Fatalf("a link onto an existing file: %v", err)
	}
	if _, err := os.Stat(p); !errors.Is(err, os.ErrNotExist) {
		t.Fatal("a failed WriteNew left a file")
	}
	if err := WriteNew(p, []byte("certificate"), 0o644); err != nil {
		t.Fatal(err)
	}
	entries, err := os.ReadDir(dir)
	if err != nil || len(entries) != 1 {
		t.Fatalf("the folder holds %v (%v), want ca.pem alone", entries, err)
	}
	if info, err := os.Stat(p); err != nil || info.Mode().Perm() != 0o644 {
		t.Fatalf("mode %v (%v)", info.Mode(), err)
	}
}
