package signer

import (
	"bytes"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/thiqa/thiqa/signer/pdfdoc"
)

// rawPDF writes a one-revision PDF with the given objects (number → body).
func rawPDF(objs map[int]string, size int) []byte {
	var b bytes.Buffer
	b.WriteString("%PDF-1.7\n")
	offs := make([]int, size)
	for n := 1; n < size; n++ {
		if body, ok := objs[n]; ok {
			offs[n] = b.Len()
			fmt.Fprintf(&b, "%d 0 obj\n%s\nendobj\n", n, body)
		}
	}
	xref := b.Len()
	fmt.Fprintf(&b, "xref\n0 %d\n0000000000 65535 f \n", size)
	for n := 1; n < size; n++ {
		if offs[n] == 0 {
			b.WriteString("0000000000 65535 f \n")
		} else {
			fmt.Fprintf(&b, "%010d 00000 n \n", offs[n])
		}
	}
	fmt.Fprintf(&b, "trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n", size, xref)
	return b.Bytes()
}

// TestCertifyFieldTreeExplosion: before a certification signature the
// signer walks the form for signed fields; arrays of two direct fields
// sharing the next array made that walk 2^32 steps (for ever) for a 2 KB
// upload. The walk is bounded and the document refused as malformed.
func TestCertifyFieldTreeExplosion(t *testing.T) {
	objs := map[int]string{
		1: "<< /Type /Catalog /Pages 2 0 R /AcroForm << /Fields 10 0 R >> >>",
		2: "<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
		3: "<< /Type /Page /Parent 2 0 R /MediaBox [0 0 200 200] >>",
	}
	const levels = 31
	for i := 10; i < 10+levels; i++ {
		objs[i] = fmt.Sprintf("[<< /T (x) /Kids %d 0 R >> << /T (x) /Kids %d 0 R >>]", i+1, i+1)
	}
	objs[10+levels] = "[]"
	doc := rawPDF(objs, 11+levels)
	rd, err := pdfdoc.Open(bytes.NewReader(doc), int64(len(doc)))
	if err != nil {
		t.Fatalf("open: %v", err)
	}
	done := make(chan error, 1)
	go func() { done <- checkPermissions(rd, true) }()
	select {
	case err := <-done:
		if !errors.Is(err, ErrMalformed) {
			t.Fatalf("want ErrMalformed, got %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("the field walk still runs after 30 s")
	}
}
