package verify

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestVerifyFileDispatch: a PDF with a detached payload is refused; what
// is neither a PDF nor a JWS gets the PDF verdict; a JWS is judged as
// JAdES (its payload read only then).
func TestVerifyFileDispatch(t *testing.T) {
	v := New(Options{})
	ctx := context.Background()
	pdf := []byte("%PDF-1.7\nnot really")
	payload := func() ([]byte, error) { return []byte("{}"), nil }
	if _, err := v.VerifyFile(ctx, bytes.NewReader(pdf), int64(len(pdf)), payload); !errors.Is(err, ErrPayloadForPDF) {
		t.Fatalf("PDF with a payload: %v", err)
	}
	junk := []byte("hello")
	rep, err := v.VerifyFile(ctx, bytes.NewReader(junk), int64(len(junk)), nil)
	if err != nil || len(rep.Signatures) != 0 {
		t.Fatalf("junk: %v %v", rep, err)
	}
	read := false
	jws := []byte("eyJhbGciOiJFUzI1NiJ9..c2ln")
	if _, err := v.VerifyFile(ctx, bytes.NewReader(jws), int64(len(jws)), func() ([]byte, error) { read = true; return []byte("{}"), nil }); err != nil || !read {
		t.Fatalf("JWS: payload read %v, %v", read, err)
	}
}

// OpenDocument opens a regular file and gives its size; a folder or a
// missing file is refused.
func TestOpenDocument(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "doc.pdf")
	if err := os.WriteFile(p, []byte("%PDF-1.7"), 0o600); err != nil {
		t.Fatal(err)
	}
	f, size, err := OpenDocument(p)
	if err != nil || size != 8 {
		t.Fatalf("OpenDocument: %d, %v", size, err)
	}
	f.Close()
	if _, _, err := OpenDocument(dir); err == nil || !strings.Contains(err.Error(), "not a regular file") {
		t.Fatalf("OpenDocument of a folder: %v", err)
	}
	if _, _, err := OpenDocument(filepath.Join(dir, "missing.pdf")); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("OpenDocument of a missing file: %v", err)
	}
}
