package verify

import (
	"bytes"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"mime/multipart"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/thiqa/thiqa/verify/report"
)

// notPDFs are bodies that are not PDFs or cannot be parsed: each must be
// TOTAL-FAILED / FORMAT_FAILURE on every path.
func notPDFs(t *testing.T) map[string][]byte {
	p := newTestPKI(t)
	signed := p.signPDF(t, signOpts{})
	var mp bytes.Buffer
	mw := multipart.NewWriter(&mp)
	fw, _ := mw.CreateFormFile("file", "doc.pdf")
	fw.Write(signed) //nolint:errcheck // bytes.Buffer
	mw.Close()
	return map[string][]byte{
		"empty":                 {},
		"text":                  []byte("not a PDF"),
		"html":                  []byte("<!DOCTYPE html><html><body>%PDF-1.7 appears only late" + strings.Repeat(" ", 2000) + "</body></html>"),
		"multipart as the body": mp.Bytes(),
		"header only":           []byte("%PDF-1.7\n"),
		"truncated":             signed[:len(signed)/3],
		"no catalog":            []byte("%PDF-1.7\n1 0 obj\n<< /Type /Pages >>\nendobj\nxref\n0 2\n0000000000 65535 f \n0000000009 00000 n \ntrailer\n<< /Size 2 /Root 7 0 R >>\nstartxref\n44\n%%EOF\n"),
		"catalog not a dict":    []byte("%PDF-1.7\n1 0 obj\n42\nendobj\nxref\n0 2\n0000000000 65535 f \n0000000009 00000 n \ntrailer\n<< /Size 2 /Root 1 0 R >>\nstartxref\n27\n%%EOF\n"),
		"field tree too deep": []byte("%PDF-1.7\n1 0 obj\n<< /Type /Catalog /AcroForm << /Fields [" + strings.Repeat("<< /Kids [", 70) +
			strings.Repeat("] >>", 70) + "] >> >>\nendobj\ntrailer\n<< /Root 1 0 R >>\n%%EOF\n"),
	}
}

// TestNotPDF checks the verdict on bodies that are not PDFs, through
// VerifyPDF (the CLI's path) and the HTTP handler, raw and multipart.
func TestNotPDF(t *testing.T) {
	v := New(Options{})
	h := v.Handler(1 << 20)
	for name, body := range notPDFs(t) {
		t.Run(name, func(t *testing.T) {
			direct := verifyBytes(t, Options{}, body)
			if direct.Indication != report.TotalFailed || direct.SubIndication != report.FormatFailure {
				t.Fatalf("VerifyPDF: %s %q", summary(direct), direct.Errors)
			}
			for _, ctype := range []string{"", "application/pdf", "application/octet-stream", "multipart"} {
				rep := postReport(t, h, ctype, body)
				if rep.Indication != direct.Indication || rep.SubIndication != direct.SubIndication || !slices.Equal(rep.Errors, direct.Errors) {
					t.Fatalf("%q: the API says %s %q, VerifyPDF %s %q", ctype, summary(rep), rep.Errors, summary(direct), direct.Errors)
				}
			}
		})
	}
}

// postReport posts body to h (wrapped in a multipart upload when ctype is
// "multipart") and decodes the 200 report.
func postReport(t *testing.T, h http.Handler, ctype string, body []byte) *report.Report {
	t.Helper()
	if ctype == "multipart" {
		var b bytes.Buffer
		mw := multipart.NewWriter(&b)
		mw.WriteField("note", "a field before the file") //nolint:errcheck // bytes.Buffer
		fw, _ := mw.CreateFormFile("file", "doc.pdf")
		fw.Write(body) //nolint:errcheck // bytes.Buffer
		mw.Close()
		body, ctype = b.Bytes(), mw.FormDataContentType()
	}
	req := httptest.NewRequest(http.MethodPost, "/api/v1/verify", bytes.NewReader(body))
	if ctype != "" {
		req.Header.Set("Content-Type", ctype)
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	var rep report.Report
	if rec.Code != http.StatusOK || rec.Header().Get("Content-Type") != "application/json" || json.Unmarshal(rec.Body.Bytes(), &rep) != nil {
		t.Fatalf("%q: %d %s %.300s", ctype, rec.Code, rec.Header().Get("Content-Type"), rec.Body)
	}
	return &rep
}

// TestHandlerMediaTypes checks what POST /api/v1/verify accepts: the PDF
// as the body or as the first file part of a multipart upload; other media
// types get 415 with a problem body.
func TestHandlerMediaTypes(t *testing.T) {
	p := newTestPKI(t)
	h := New(Options{TrustAnchors: []*x509.Certificate{p.root}, Revocation: RevocationIgnored}).Handler(1 << 20)
	pdf := p.signPDF(t, signOpts{})
	for _, ct := range []string{"", "application/pdf", "application/PDF; charset=binary", "application/octet-stream", "multipart"} {
		if rep := postReport(t, h, ct, pdf); rep.Indication != report.TotalPassed {
			t.Fatalf("%q: %s", ct, summary(rep))
		}
	}
	send := func(ctype string, body []byte) *httptest.ResponseRecorder {
		req := httptest.NewRequest(http.MethodPost, "/api/v1/verify", bytes.NewReader(body))
		req.Header.Set("Content-Type", ctype)
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		return rec
	}
	for _, ct := range []string{"application/x-www-form-urlencoded", "text/plain", "application/xml", "image/png", "multipart/mixed; boundary=x", "not a media type;;"} {
		rec := send(ct, pdf)
		var pb struct {
			Status int    `json:"status"`
			Detail string `json:"detail"`
		}
		if rec.Code != http.StatusUnsupportedMediaType || rec.Header().Get("Content-Type") != "application/problem+json" ||
			json.Unmarshal(rec.Body.Bytes(), &pb) != nil || pb.Status != 415 || !strings.Contains(rec.Header().Get("Accept-Post"), "multipart/form-data") {
			t.Fatalf("%q: %d %v %s", ct, rec.Code, rec.Header(), rec.Body)
		}
	}
	// Multipart without a file part, without a boundary, or malformed: 400.
	var b bytes.Buffer
	mw := multipart.NewWriter(&b)
	mw.WriteField("file", "not a file part") //nolint:errcheck // bytes.Buffer
	mw.Close()
	for name, rec := range map[string]*httptest.ResponseRecorder{
		"no file part": send(mw.FormDataContentType(), b.Bytes()),
		"no boundary":  send("multipart/form-data", pdf),
		"malformed":    send("multipart/form-data; boundary=zzz", pdf),
	} {
		if rec.Code != http.StatusBadRequest || rec.Header().Get("Content-Type") != "application/problem+json" {
			t.Fatalf("%s: %d %s", name, rec.Code, rec.Body)
		}
	}
	// A multipart upload over the limit: 413.
	b.Reset()
	mw = multipart.NewWriter(&b)
	fw, _ := mw.CreateFormFile("file", "big.pdf")
	fw.Write(make([]byte, 2<<20)) //nolint:errcheck // bytes.Buffer
	mw.Close()
	if rec := send(mw.FormDataContentType(), b.Bytes()); rec.Code != http.StatusRequestEntityTooLarge {
		t.Fatalf("oversized multipart upload: %d %s", rec.Code, rec.Body)
	}
}

// TestHandlerConcurrent posts two documents from several goroutines: the
// pooled body buffers never mix one request's bytes into another's verdict.
func TestHandlerConcurrent(t *testing.T) {
	p := newTestPKI(t)
	h := New(Options{TrustAnchors: []*x509.Certificate{p.root}, Revocation: RevocationIgnored}).Handler(1 << 20)
	good := p.signPDF(t, signOpts{padding: 20 << 10})
	bad := bytes.Clone(good)
	bad[bytes.Index(bad, []byte("Signed document"))] = 's'
	var wg sync.WaitGroup
	errs := make(chan string, 64)
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 20 {
				doc, want := good, report.TotalPassed
				if (g+i)%2 == 1 {
					doc, want = bad, report.TotalFailed
				}
				req := httptest.NewRequest(http.MethodPost, "/api/v1/verify", bytes.NewReader(doc))
				rec := httptest.NewRecorder()
				h.ServeHTTP(rec, req)
				var rep report.Report
				if err := json.Unmarshal(rec.Body.Bytes(), &rep); err != nil || rep.Indication != want {
					errs <- fmt.Sprintf("goroutine %d, request %d: %d %s, want %s", g, i, rec.Code, rep.Indication, want)
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for e := range errs {
		t.Error(e)
	}
}
