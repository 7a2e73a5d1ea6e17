package verify

import (
	"bytes"
	"encoding/json"
	"mime/multipart"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/thiqa/thiqa/verify/report"
)

// FuzzHandler posts arbitrary bodies under arbitrary media types: the
// answer is a report (200) or a problem body with 400, 413 or 415, never a
// panic; a 200 report on a body that is not a PDF is FORMAT_FAILURE.
func FuzzHandler(f *testing.F) {
	var b bytes.Buffer
	mw := multipart.NewWriter(&b)
	mw.WriteField("note", "x") //nolint:errcheck // bytes.Buffer
	fw, _ := mw.CreateFormFile("file", "a.pdf")
	fw.Write([]byte("%PDF-1.7\n1 0 obj\n<< /Type /Catalog >>\nendobj\ntrailer\n<< /Root 1 0 R >>\n%%EOF\n")) //nolint:errcheck // bytes.Buffer
	mw.Close()
	f.Add(mw.FormDataContentType(), b.Bytes())
	f.Add("application/pdf", []byte("%PDF-1.7\n%%EOF"))
	f.Add("multipart/form-data; boundary=\"a b\"", []byte("--a b\r\nContent-Disposition: form-data; name=f; filename=x\r\n\r\nhello\r\n--a b--\r\n"))
	f.Add("text/plain; charset=utf-8", []byte("hello"))
	f.Add("", []byte{})
	h := New(Options{}).Handler(1 << 16)
	f.Fuzz(func(t *testing.T, ctype string, body []byte) {
		req := httptest.NewRequest(http.MethodPost, "/api/v1/verify", bytes.NewReader(body))
		if ctype != "" {
			req.Header.Set("Content-Type", ctype)
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		switch rec.Code {
		case http.StatusOK:
			var rep report.Report
			if err := json.Unmarshal(rec.Body.Bytes(), &rep); err != nil || rep.Indication == "" {
				t.Fatalf("200 without a report: %v %.200s", err, rec.Body)
			}
			// A JWS is judged as a JAdES signature: any verdict, but no
			// signature of it can pass without a trusted certificate.
			if LooksLikeJWS(body) && !bytes.Contains(body, []byte("%PDF-")) {
				if rep.Indication == report.TotalPassed {
					t.Fatalf("a JWS passed without trust anchors: %.200s", rec.Body)
				}
			} else if !bytes.Contains(body, []byte("%PDF-")) && (rep.Indication != report.TotalFailed || rep.SubIndication != report.FormatFailure) {
				t.Fatalf("a body without %%PDF- got %s %s", rep.Indication, rep.SubIndication)
			}
		case http.StatusBadRequest, http.StatusRequestEntityTooLarge, http.StatusUnsupportedMediaType:
			if rec.Header().Get("Content-Type") != "application/problem+json" {
				t.Fatalf("%d without a problem body", rec.Code)
			}
		default:
			t.Fatalf("status %d for %q: %.200s", rec.Code, ctype, rec.Body)
		}
	})
}
