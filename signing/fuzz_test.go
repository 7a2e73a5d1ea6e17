package signing

import (
	"bytes"
	"testing"
)

// FuzzReadDocument feeds arbitrary bodies to the intake of the signing
// endpoints, with and without an announced length.
func FuzzReadDocument(f *testing.F) {
	f.Add([]byte("%PDF-1.7\n%%EOF\n"), int64(15))
	f.Add([]byte("not a pdf"), int64(-1))
	f.Add([]byte("%PDF-"), int64(100))
	dir := f.TempDir()
	f.Fuzz(func(t *testing.T, body []byte, size int64) {
		if size < -1 {
			size = -1
		}
		// A reused buffer (holding an earlier body) or none.
		var buf []byte
		if len(body)%2 == 0 {
			buf = bytes.Repeat([]byte{'x'}, 64)
		}
		in, cleanup, err := readDocument(bytes.NewReader(body), size, dir, 1<<20, buf)
		defer cleanup()
		if err != nil {
			return
		}
		if in.size != int64(len(body)) || !bytes.Contains(body[:min(len(body), 1024)], []byte("%PDF-")) {
			t.Fatalf("accepted %d of %d bytes (announced %d)", in.size, len(body), size)
		}
		got := make([]byte, in.size)
		if n, _ := in.r.ReadAt(got, 0); int64(n) != in.size || !bytes.Equal(got, body) {
			t.Fatal("the document read is not the body")
		}
	})
}
