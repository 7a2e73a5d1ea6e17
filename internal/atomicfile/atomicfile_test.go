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
