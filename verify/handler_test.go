package verify

import (
	"bytes"
	"crypto/x509"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/thiqa/thiqa/verify/report"
)

func TestHandler(t *testing.T) {
	p := newTestPKI(t)
	h := New(Options{TrustAnchors: []*x509.Certificate{p.root}, Revocation: RevocationIgnored}).Handler(1 << 20)
	pdf := p.signPDF(t, signOpts{})

	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, "/api/v1/verify", bytes.NewReader(pdf)))
	if rec.Code != http.StatusOK {
		t.Fatalf("status %d: %s", rec.Code, rec.Body)
	}
	var rep report.Report
	if err := json.Unmarshal(rec.Body.Bytes(), &rep); err != nil {
		t.Fatal(err)
	}
	if rep.Indication != report.TotalPassed || len(rep.Signatures) != 1 || rep.Signatures[0].Level != "B-B" {
		t.Fatalf("unexpected report: %s", rec.Body)
	}

	rec = httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, "/api/v1/verify", bytes.NewReader(make([]byte, 2<<20))))
	if rec.Code != http.StatusRequestEntityTooLarge || !strings.Contains(rec.Header().Get("Content-Type"), "problem+json") {
		t.Fatalf("oversized body: status %d %s", rec.Code, rec.Header().Get("Content-Type"))
	}

	rec = httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/api/v1/verify", nil))
	if rec.Code != http.StatusMethodNotAllowed {
		t.Fatalf("GET: status %d", rec.Code)
	}

	rec = httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, "/api/v1/verify", strings.NewReader("not a pdf")))
	if rec.Code != http.StatusOK || !strings.Contains(rec.Body.String(), `"TOTAL-FAILED"`) {
		t.Fatalf("garbage: status %d %s", rec.Code, rec.Body)
	}
}

func TestHandlerSpoolsLargeBodies(t *testing.T) {
	p := newTestPKI(t)
	h := New(Options{TrustAnchors: []*x509.Certificate{p.root}, Revocation: RevocationIgnored}).Handler(64 << 20)
	pdf := p.signPDF(t, signOpts{padding: 9 << 20})
	// With a Content-Length (straight to disk) and without one (memory
	// first, then disk).
	for _, length := range []int64{int64(len(pdf)), -1} {
		req := httptest.NewRequest(http.MethodPost, "/api/v1/verify", bytes.NewReader(pdf))
		req.ContentLength = length
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code != http.StatusOK || !strings.Contains(rec.Body.String(), `"indication":"TOTAL-PASSED"`) {
			t.Fatalf("%d MB body, Content-Length %d: status %d %.300s", len(pdf)>>20, length, rec.Code, rec.Body)
		}
	}
}
