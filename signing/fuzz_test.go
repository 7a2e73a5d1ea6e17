package signing

import (
	"bufio"
	"bytes"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/url"
	"testing"

	"github.com/thiqa/thiqa/internal/problem"
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

// FuzzBatchAnswer: the streamed answer of a batch seal is, byte for byte,
// what json.Encoder gives for the whole BatchResponse, whatever the names,
// problems, warnings and documents; documents beyond inMemoryBody come
// from a temporary file.
func FuzzBatchAnswer(f *testing.F) {
	f.Add("a.pdf", "", "", []byte("%PDF-1.7 sealed"), true, uint16(0))
	f.Add(`"document":"-" <&> `+"\u2028\x00é", "not a PDF <b>", "the image is too wide & was scaled", []byte{}, false, uint16(3))
	f.Add("", "", "warning", []byte{0xff, 0, 1}, true, uint16(2))
	dir := f.TempDir()
	f.Fuzz(func(t *testing.T, name, detail, warning string, doc []byte, ok bool, copies uint16) {
		n := int(copies%4) + 1
		results := make([]BatchResult, n)
		outs := make([]*sealedDoc, n)
		for i := range results {
			res := BatchResult{Name: name, Status: http.StatusBadRequest}
			if warning != "" {
				res.Warnings = []string{warning, name}
			}
			if ok && i != 1 {
				data := doc
				if i == 2 { // beyond what is kept in memory
					data = bytes.Repeat(append(doc, 'x'), inMemoryBody/(len(doc)+1)+1)
				}
				out, err := newSealedDoc(int64(len(data)), dir)
				if err != nil {
					t.Fatal(err)
				}
				defer out.Close()
				if _, err := out.Write(data); err != nil {
					t.Fatal(err)
				}
				outs[i] = out
				res.Status, res.DocumentDigest = http.StatusOK, "ab01"
				results[i] = res
				results[i].Document = base64.StdEncoding.EncodeToString(data)
				if len(data) == 0 {
					outs[i] = nil // an empty document has no "document" member (omitempty)
				}
				continue
			}
			res.Problem = &problem.Details{Status: http.StatusBadRequest, Title: "Bad Request", Detail: detail}
			results[i] = res
		}
		var want bytes.Buffer
		_ = json.NewEncoder(&want).Encode(BatchResponse{Level: "B-T", Results: results})
		var got bytes.Buffer
		bw := bufio.NewWriter(&got)
		err := writeBatchHead(bw, "B-T")
		for i, res := range results {
			if err == nil {
				err = writeBatchResult(bw, i > 0, res, outs[i])
			}
		}
		if err == nil {
			err = writeBatchTail(bw)
		}
		if err != nil || !bytes.Equal(got.Bytes(), want.Bytes()) {
			t.Fatalf("%v\n got %.400q\nwant %.400q", err, got.Bytes(), want.Bytes())
		}
	})
}
