package verify

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"os"
	"testing"

	"github.com/thiqa/thiqa/internal/testenv"
)

// TestUploadOnFullDisk: a document too large to hold in memory goes to a
// temporary file; when the disk under it is full the answer is 503 "try
// again later" with Retry-After, not 400 (the client did nothing wrong),
// nothing is left behind, and once space is back the same upload works.
func TestUploadOnFullDisk(t *testing.T) {
	disk := testenv.NewSmallDisk(t, 2*memLimit)
	t.Setenv("TMPDIR", disk.Dir)
	v := New(Options{Revocation: RevocationIgnored})
	h := v.Handler(64 << 20)
	body := append([]byte("%PDF-1.7\n"), bytes.Repeat([]byte("%x\n"), (memLimit+(1<<20))/3)...)
	post := func() *httptest.ResponseRecorder {
		rec := httptest.NewRecorder()
		req := httptest.NewRequest(http.MethodPost, "/api/v1/verify", bytes.NewReader(body))
		req.Header.Set("Content-Type", "application/pdf")
		h.ServeHTTP(rec, req)
		return rec
	}

	disk.Fill(t)
	rec := post()
	if rec.Code != http.StatusServiceUnavailable || rec.Header().Get("Retry-After") == "" {
		t.Errorf("upload on a full disk: %d %q (Retry-After %q), want 503 with Retry-After", rec.Code, rec.Body, rec.Header().Get("Retry-After"))
	}
	if left, _ := os.ReadDir(disk.Dir); len(left) != 1 { // the filler
		t.Errorf("left behind on the full disk: %v", left)
	}

	disk.Free(t)
	if rec := post(); rec.Code == http.StatusServiceUnavailable || rec.Code == http.StatusBadRequest {
		t.Errorf("upload after space was freed: %d %s", rec.Code, rec.Body)
	}
}
