package verify

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"os"

	"github.com/thiqa/thiqa/internal/problem"
)

// Handler serves POST /api/v1/verify: the request body is the PDF, the
// response the JSON report. Bodies above maxBytes get 413; bodies above
// memLimit are spooled to a temporary file so memory stays bounded.
// Rate limiting belongs to the caller's middleware.
func (v *Verifier) Handler(maxBytes int64) http.Handler {
	const memLimit = 8 << 20
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost {
			w.Header().Set("Allow", http.MethodPost)
			problem.Error(w, http.StatusMethodNotAllowed, "POST the PDF as the request body")
			return
		}
		body := http.MaxBytesReader(w, r.Body, maxBytes)
		var buf bytes.Buffer
		n, err := io.CopyN(&buf, body, memLimit+1)
		var ra io.ReaderAt
		size := n
		if err != nil && !errors.Is(err, io.EOF) {
			writeBodyError(w, err)
			return
		}
		if n > memLimit {
			tmp, err := os.CreateTemp("", "thiqa-verify-*.pdf")
			if err != nil {
				problem.Error(w, http.StatusInternalServerError, "cannot buffer the document")
				return
			}
			defer os.Remove(tmp.Name())
			defer tmp.Close()
			if _, err := tmp.Write(buf.Bytes()); err != nil {
				problem.Error(w, http.StatusInternalServerError, "cannot buffer the document")
				return
			}
			m, err := io.Copy(tmp, body)
			if err != nil {
				writeBodyError(w, err)
				return
			}
			ra, size = tmp, n+m
		} else {
			ra = bytes.NewReader(buf.Bytes())
		}
		if size == 0 {
			problem.Error(w, http.StatusBadRequest, "empty body: POST the PDF")
			return
		}
		rep, err := v.VerifyPDF(r.Context(), ra, size)
		if err != nil {
			if errors.Is(err, ErrTooLarge) {
				problem.Error(w, http.StatusRequestEntityTooLarge, err.Error())
				return
			}
			problem.Error(w, http.StatusUnprocessableEntity, err.Error())
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("X-Content-Type-Options", "nosniff")
		_ = json.NewEncoder(w).Encode(rep)
	})
}

func writeBodyError(w http.ResponseWriter, err error) {
	var mbe *http.MaxBytesError
	if errors.As(err, &mbe) {
		problem.Error(w, http.StatusRequestEntityTooLarge, "the document is larger than the limit")
		return
	}
	problem.Error(w, http.StatusBadRequest, "reading the request body failed")
}
