package signing

import (
	"bytes"
	"net/http"
	"net/url"
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

// FuzzDocumentOptions feeds arbitrary queries to the parser of the seal and
// sign options: a refusal (400) or options that are consistent, never a
// panic.
func FuzzDocumentOptions(f *testing.F) {
	f.Add("visible=1&page=2&rect=10,20,210,90&locale=ar&reason=Approved&certify=2")
	f.Add("rect=1e309,0,1,1&visible=1")
	f.Add("reason=%ff&location=%00")
	f.Add("visible=true&rect=-5,-5,-1,-1&page=99999999999999999999")
	f.Fuzz(func(t *testing.T, query string) {
		q, err := url.ParseQuery(query)
		if err != nil {
			return
		}
		o, err := documentOptions(q)
		if err != nil {
			if status, _, _ := Classify(err); status != http.StatusBadRequest {
				t.Fatalf("%q: refused with %d", query, status)
			}
			return
		}
		if o == nil {
			return
		}
		if o.Certify < 0 || o.Certify > 3 {
			t.Fatalf("%q: certify %d", query, o.Certify)
		}
		if a := o.Appearance; a != nil && (a.Page < 1 || a.Rect[2]-a.Rect[0] < 1 || a.Rect[3]-a.Rect[1] < 1) {
			t.Fatalf("%q: appearance %+v", query, a)
		}
	})
}
