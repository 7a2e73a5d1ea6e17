package ocsp

import (
	"encoding/base64"
	"io"
	"mime"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/thiqa/thiqa/internal/problem"
)

// maxBase64 bounds the base64 form of a GET request.
const maxBase64 = (MaxRequestSize+2)/3*4 + 4

// ServeHTTP serves POST /ocsp (body application/ocsp-request) and
// GET /ocsp/{base64} (RFC 6960 Appendix A; the path may be percent-encoded,
// '+' and '/' included). Every OCSP outcome, errors included, is an
// application/ocsp-response with HTTP 200. Cacheable GET answers carry
// Cache-Control max-age (bounded by nextUpdate and MaxAge), ETag,
// Last-Modified (thisUpdate) and Expires.
//
// Mount it ahead of a cleaning http.ServeMux for GET: a base64 path may hold
// "//", which ServeMux would redirect.
func (r *Responder) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	var der []byte
	switch req.Method {
	case http.MethodPost:
		if ct := req.Header.Get("Content-Type"); ct != "" {
			if mt, _, err := mime.ParseMediaType(ct); err != nil || mt != "application/ocsp-request" {
				problem.Error(w, http.StatusUnsupportedMediaType, "OCSP requests are application/ocsp-request")
				return
			}
		}
		body, err := io.ReadAll(io.LimitReader(req.Body, MaxRequestSize+1))
		if err != nil || len(body) > MaxRequestSize {
			r.m.count(outMalformed)
			writeOCSP(w, respMalformed)
			return
		}
		der = body
	case http.MethodGet:
		path := req.URL.Path
		i := strings.Index(path, "/ocsp/")
		if i < 0 {
			r.m.count(outMalformed)
			writeOCSP(w, respMalformed)
			return
		}
		b64 := path[i+len("/ocsp/"):]
		if len(b64) > maxBase64 {
			r.m.count(outMalformed)
			writeOCSP(w, respMalformed)
			return
		}
		b64 = strings.ReplaceAll(b64, " ", "+") // '+' form-decoded to a space
		d, err := base64.StdEncoding.DecodeString(b64)
		if err != nil {
			d, err = base64.RawStdEncoding.DecodeString(b64)
		}
		if err != nil {
			r.m.count(outMalformed)
			writeOCSP(w, respMalformed)
			return
		}
		der = d
	default:
		w.Header().Set("Allow", "GET, POST")
		problem.Error(w, http.StatusMethodNotAllowed, "OCSP uses GET or POST")
		return
	}
	resp, e := r.Respond(req.Context(), der)
	h := w.Header()
	if req.Method == http.MethodGet && e != nil {
		now := r.now()
		maxAge := min(e.NextUpdate.Sub(now), r.set.MaxAge)
		if maxAge < 0 {
			maxAge = 0
		}
		h.Set("Cache-Control", "public, max-age="+strconv.Itoa(int(maxAge/time.Second))+", no-transform, must-revalidate")
		h.Set("ETag", e.ETag)
		h.Set("Last-Modified", e.ThisUpdate.UTC().Format(http.TimeFormat))
		h.Set("Expires", now.Add(maxAge).UTC().Format(http.TimeFormat))
		if inm := req.Header.Get("If-None-Match"); inm != "" && inm == e.ETag {
			w.WriteHeader(http.StatusNotModified)
			return
		}
	} else {
		h.Set("Cache-Control", "no-store")
	}
	writeOCSP(w, resp)
}

func writeOCSP(w http.ResponseWriter, der []byte) {
	h := w.Header()
	h.Set("Content-Type", "application/ocsp-response")
	h.Set("Content-Length", strconv.Itoa(len(der)))
	w.WriteHeader(http.StatusOK)
	w.Write(der)
}
