package verify

import (
	"bytes"
	"context"
	"errors"
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
