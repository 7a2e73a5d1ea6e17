package signing

import (
	"bytes"
	"net/http"
	"testing"

	"github.com/thiqa/thiqa/internal/outage"
	"github.com/thiqa/thiqa/internal/testenv"
)

// TestTempFilesOnFullDisk: a PDF over 2 MiB to sign, and a batch's sealed
// document over 2 MiB, go to temporary files in signing.tempDir. When that
// disk is full the failure is this side's and transient: answered 503
// "try again later" (Classify), not 400 with the server's path in the
// detail; once space is back the same documents go through.
func TestTempFilesOnFullDisk(t *testing.T) {
	disk := testenv.NewSmallDisk(t, 8<<20)
	doc := append([]byte("%PDF-1.7\n"), bytes.Repeat([]byte("%x\n"), (inMemoryBody+(1<<20))/3)...)

	disk.Fill(t)
	_, _, err := readDocument(bytes.NewReader(doc), int64(len(doc)), disk.Dir, 32<<20, nil)
	if status, detail, _ := Classify(err); status != http.StatusServiceUnavailable || bytes.Contains([]byte(detail), []byte(disk.Dir)) {
		t.Errorf("reading a PDF on a full disk: %d %q (%v), want 503 without the path", status, detail, err)
	}
	out, err := newSealedDoc(int64(len(doc)), disk.Dir)
	if err == nil {
		_, err = out.Write(doc)
		out.Close()
	}
	if !outage.Is(err) {
		t.Errorf("spooling a sealed document on a full disk: %v, want an outage", err)
	}

	disk.Free(t)
	in, cleanup, err := readDocument(bytes.NewReader(doc), int64(len(doc)), disk.Dir, 32<<20, nil)
	if err != nil || in.size != int64(len(doc)) {
		t.Fatalf("reading a PDF once space is back: %v", err)
	}
	cleanup()
	out, err = newSealedDoc(int64(len(doc)), disk.Dir)
	if err == nil {
		_, err = out.Write(doc)
		out.Close()
	}
	if err != nil {
		t.Fatalf("spooling a sealed document once space is back: %v", err)
	}
}
