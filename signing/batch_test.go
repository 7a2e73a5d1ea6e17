package signing_test

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"mime/multipart"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/thiqa/thiqa/internal/audit"
	"github.com/thiqa/thiqa/policies"
	"github.com/thiqa/thiqa/signing"
	"github.com/thiqa/thiqa/store/storetest"
)

// TestSealBatch: the answer of POST /api/v1/seal/batch decodes to the
// BatchResponse it always was, results in the order of the parts; refusals
// of the whole request come before any 200; a large batch holds only a few
// sealed documents in memory at a time; and no temporary file outlives its
// request, also when the client goes away in the middle of the answer.
func TestSealBatch(t *testing.T) {
	w := newWorld(t, storetest.Dialects()[0], worldOptions{})
	agency := w.token(t, "NTROM-1234567", policies.RoleAgency)
	cred, _ := w.credential(t, policies.ProfileOrganisationSeal, orgSubject())
	big := samplePDF(t, 3<<20) // beyond what is kept in memory: spooled in and out

	t.Run("mixed", func(t *testing.T) {
		small := samplePDF(t, 8<<10)
		parts := []batchPart{
			{"a.pdf", small}, {"bad <&>.txt", []byte("not a pdf")}, {"big.pdf", big},
			{"truncated.pdf", big[:len(big)/2]}, {"c.pdf", samplePDF(t, 2048)},
		}
		want := []int{200, 400, 200, 400, 200}
		mb, ctype := batchBody(t, parts)
		code, hdr, body := w.send(t, "/api/v1/seal/batch?level=B-T&credential="+cred, agency, ctype, mb, nil)
		if code != http.StatusOK || hdr.Get("Content-Type") != "application/json" {
			t.Fatalf("batch: %d %s %.300s", code, hdr.Get("Content-Type"), body)
		}
		dec := json.NewDecoder(bytes.NewReader(body))
		dec.DisallowUnknownFields()
		var br signing.BatchResponse
		if err := dec.Decode(&br); err != nil || dec.More() {
			t.Fatalf("decoding the answer: %v (more: %v)", err, dec.More())
		}
		// What the old answer was: one json.Encoder over the whole response.
		var again bytes.Buffer
		_ = json.NewEncoder(&again).Encode(br)
		if !bytes.Equal(again.Bytes(), body) {
			t.Fatalf("the answer is not the encoding of its own decoding:\n%.500s\n%.500s", body, again.Bytes())
		}
		if br.Level != "B-T" || len(br.Results) != len(parts) {
			t.Fatalf("level %q, %d results", br.Level, len(br.Results))
		}
		for i, r := range br.Results {
			if r.Name != parts[i].name || r.Status != want[i] {
				t.Fatalf("result %d: %s %d, want %s %d", i, r.Name, r.Status, parts[i].name, want[i])
			}
			if r.Status != http.StatusOK {
				if r.Problem == nil || r.Problem.Status != r.Status || r.Document != "" || r.DocumentDigest != "" {
					t.Fatalf("result %d: %+v", i, r)
				}
				continue
			}
			sealed, err := base64.StdEncoding.DecodeString(r.Document)
			if err != nil || len(r.DocumentDigest) != 64 || r.Problem != nil || !bytes.HasPrefix(sealed, parts[i].data[:len(parts[i].data)-10]) {
				t.Fatalf("result %d: %v, digest %q, problem %v, %d bytes", i, err, r.DocumentDigest, r.Problem, len(sealed))
			}
			if parts[i].name == "big.pdf" {
				w.checkPDF(t, "batch-big.pdf", sealed, "organisation", "B-T")
			}
		}
		// Each document audited on its own.
		for _, name := range []string{"a.pdf", "big.pdf", "c.pdf"} {
			if n := countNamed(w.records(t, signing.ActionSeal, "success", "NTROM-1234567"), name); n != 1 {
				t.Fatalf("%d success records for %s", n, name)
			}
		}
		noTempFiles(t, w.svcTemp)
	})

	t.Run("audit down", func(t *testing.T) {
		// No document's answer leaves without its record: while the log
		// cannot be written, a refused part and a sealed one are both
		// failures (500), and no sealed document is released.
		mb, ctype := batchBody(t, []batchPart{{"bad.txt", []byte("not a pdf")}, {"a.pdf", samplePDF(t, 2048)}})
		w.auditGate.Down.Store(true)
		code, _, body := w.send(t, "/api/v1/seal/batch?level=B-B&credential="+cred, agency, ctype, mb, nil)
		w.auditGate.Down.Store(false)
		var br signing.BatchResponse
		if err := json.Unmarshal(body, &br); err != nil || code != http.StatusOK || len(br.Results) != 2 {
			t.Fatalf("batch: %d %v %.300s", code, err, body)
		}
		for _, r := range br.Results {
			if r.Status != http.StatusInternalServerError || r.Document != "" {
				t.Errorf("%s: status %d, %d bytes of document, want 500 and none", r.Name, r.Status, len(r.Document))
			}
		}
	})

	t.Run("refusals", func(t *testing.T) {
		path := "/api/v1/seal/batch?level=B-B&credential=" + cred
		parts := make([]batchPart, 101)
		for i := range parts {
			parts[i] = batchPart{fmt.Sprintf("p%d.pdf", i), []byte("%PDF-1.7 tiny")}
		}
		mb, ctype := batchBody(t, parts)
		code, _, body := w.send(t, path, agency, ctype, mb, nil)
		wantStatus(t, "101 documents", code, body, http.StatusRequestEntityTooLarge, "at most 100 documents")
		mb, ctype = batchBody(t, nil)
		code, _, body = w.send(t, path, agency, ctype, mb, nil)
		wantStatus(t, "no document", code, body, http.StatusBadRequest, "no document")
		code, _, body = w.send(t, path, agency, "application/pdf", big, nil)
		wantStatus(t, "not multipart", code, body, http.StatusUnsupportedMediaType, "multipart/form-data")
		code, _, body = w.send(t, path, agency, "multipart/form-data; boundary=xyz", []byte("--xyz\r\nbroken"), nil)
		wantStatus(t, "broken multipart", code, body, http.StatusBadRequest, "multipart")
		noTempFiles(t, w.svcTemp)
	})

	t.Run("memory", func(t *testing.T) {
		// 24 documents of 3 MiB: the old answer held every sealed document
		// twice (the PDF and its base64) and then the whole JSON, some
		// 330 MiB measured; streamed, a few sealed documents wait, on disk.
		const n = 24
		defer debug.SetGCPercent(debug.SetGCPercent(10)) // the heap follows what is live
		runtime.GC()
		peak := watchHeap()
		resp := w.streamBatch(t, "/api/v1/seal/batch?level=B-B&credential="+cred, agency, n, "mem", big)
		defer resp.Body.Close()
		results := 0
		err := decodeResults(resp.Body, func(r streamedResult) error {
			if r.Status != http.StatusOK || r.Name != fmt.Sprintf("mem-%02d.pdf", results) || r.Document < base64Len(len(big)) {
				return fmt.Errorf("result %d: %+v", results, r)
			}
			results++
			return nil
		})
		grew := peak()
		t.Logf("heap peak while %d documents of %.1f MiB were sealed and sent: %.1f MiB above the start", n, float64(len(big))/(1<<20), float64(grew)/(1<<20))
		if err != nil || results != n {
			t.Fatalf("%d results: %v", results, err)
		}
		if grew > 64<<20 {
			t.Fatalf("the heap grew by %d MiB for one batch: the sealed documents are not streamed", grew>>20)
		}
		noTempFiles(t, w.svcTemp)
	})

	t.Run("client gone", func(t *testing.T) {
		const n = 16
		resp := w.streamBatch(t, "/api/v1/seal/batch?level=B-B&credential="+cred, agency, n, "gone", big)
		if _, err := io.ReadFull(resp.Body, make([]byte, 64<<10)); err != nil {
			t.Fatal(err)
		}
		resp.Body.Close() // mid-answer: the connection closes
		noTempFiles(t, w.svcTemp)
		// The documents not started when the client went away are not sealed.
		var sealed int
		for i := range n {
			sealed += countNamed(w.records(t, signing.ActionSeal, "success", "NTROM-1234567"), fmt.Sprintf("gone-%02d.pdf", i))
		}
		if sealed == n {
			t.Fatalf("all %d documents were sealed for a client that went away after the first", n)
		}
		t.Logf("%d of %d documents sealed before the client's departure stopped the batch", sealed, n)
	})
	w.verifyAudit(t)
}

type batchPart struct {
	name string
	data []byte
}

// batchBody is a multipart body holding parts, and its content type.
func batchBody(t *testing.T, parts []batchPart) ([]byte, string) {
	t.Helper()
	var mb bytes.Buffer
	mw := multipart.NewWriter(&mb)
	for _, p := range parts {
		fw, err := mw.CreateFormFile("document", p.name)
		if err != nil {
			t.Fatal(err)
		}
		_, _ = fw.Write(p.data)
	}
	_ = mw.Close()
	return mb.Bytes(), mw.FormDataContentType()
}

// streamBatch posts a batch of n copies of pdf, named prefix-NN.pdf,
// without holding the body in memory, and returns the answer unread.
func (w *world) streamBatch(t *testing.T, path, token string, n int, prefix string, pdf []byte) *http.Response {
	t.Helper()
	pr, pw := io.Pipe()
	mw := multipart.NewWriter(pw)
	go func() {
		for i := range n {
			fw, err := mw.CreateFormFile("document", fmt.Sprintf("%s-%02d.pdf", prefix, i))
			if err == nil {
				_, err = fw.Write(pdf)
			}
			if err != nil {
				pw.CloseWithError(err)
				return
			}
		}
		pw.CloseWithError(mw.Close())
	}()
	req, err := http.NewRequest(http.MethodPost, w.srv.URL+path, pr)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", mw.FormDataContentType())
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		t.Fatalf("batch: %d %.300s", resp.StatusCode, b)
	}
	return resp
}

// streamedResult is a BatchResult whose document is only measured.
type streamedResult struct {
	Name     string    `json:"name"`
	Status   int       `json:"status"`
	Document base64Len `json:"document"`
}

// base64Len is the decoded length of a base64 JSON string.
type base64Len int64

func (l *base64Len) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return err
	}
	b, err := base64.StdEncoding.DecodeString(s)
	*l = base64Len(len(b))
	return err
}

// decodeResults reads a BatchResponse one result at a time.
func decodeResults(r io.Reader, each func(streamedResult) error) error {
	dec := json.NewDecoder(r)
	want := func(tok json.Token) error {
		got, err := dec.Token()
		if err != nil || got != tok {
			return fmt.Errorf("got %v (%v), want %v", got, err, tok)
		}
		return nil
	}
	for _, tok := range []json.Token{json.Delim('{'), "level", "B-B", "results", json.Delim('[')} {
		if err := want(tok); err != nil {
			return err
		}
	}
	for dec.More() {
		var res streamedResult
		if err := dec.Decode(&res); err != nil {
			return err
		}
		if err := each(res); err != nil {
			return err
		}
	}
	for _, tok := range []json.Token{json.Delim(']'), json.Delim('}')} {
		if err := want(tok); err != nil {
			return err
		}
	}
	if _, err := dec.Token(); err != io.EOF {
		return fmt.Errorf("after the answer: %v", err)
	}
	return nil
}

// watchHeap samples the bytes of the heap's objects until the returned
// function is called, which returns the peak above the first sample.
func watchHeap() func() uint64 {
	sample := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}
	read := func() uint64 { metrics.Read(sample); return sample[0].Value.Uint64() }
	base := read()
	var peak atomic.Uint64
	stop, done := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(done)
		for {
			if v := read(); v > peak.Load() {
				peak.Store(v)
			}
			select {
			case <-stop:
				return
			case <-time.After(time.Millisecond):
			}
		}
	}()
	return func() uint64 {
		close(stop)
		<-done
		if p := peak.Load(); p > base {
			return p - base
		}
		return 0
	}
}

// noTempFiles waits (at most 30 s) until the process holds no file of dir
// open: the service's temporary files are unlinked at once, so the open
// descriptors are what shows them.
func noTempFiles(t *testing.T, dir string) {
	t.Helper()
	if _, err := os.Stat("/proc/self/fd"); err != nil {
		t.Skip("no /proc/self/fd to see open files")
	}
	var open []string
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		open = open[:0]
		fds, _ := os.ReadDir("/proc/self/fd")
		for _, fd := range fds {
			if target, err := os.Readlink(filepath.Join("/proc/self/fd", fd.Name())); err == nil && strings.HasPrefix(target, dir+string(filepath.Separator)) {
				open = append(open, target)
			}
		}
		entries, _ := os.ReadDir(dir)
		if len(open) == 0 && len(entries) == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("temporary files left: %d open (%v), %d in %s", len(open), open, len(entries), dir)
		}
	}
}

// countNamed counts the records whose details name the document name.
func countNamed(recs []audit.Record, name string) int {
	n := 0
	for _, r := range recs {
		var d struct{ Name string }
		if json.Unmarshal(r.Details, &d) == nil && d.Name == name {
			n++
		}
	}
	return n
}
