package verify

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"mime/multipart"
	"net/http"
	"os"

	"github.com/thiqa/thiqa/internal/outage"
	"github.com/thiqa/thiqa/internal/problem"
	"github.com/thiqa/thiqa/verify/report"
)

// AcceptedMediaTypes are the request media types of POST /api/v1/verify: the
// PDF itself as the body (application/pdf, application/octet-stream, or no
// Content-Type at all), or a multipart/form-data upload whose first file
// part is the PDF (an HTML form, `curl -F file=@doc.pdf`). Any other media
// type gets 415.
const AcceptedMediaTypes = "application/pdf, application/octet-stream, multipart/form-data, application/json, application/jose, application/jose+json"

// maxSkippedParts bounds the non-file parts read before the file part of a
// multipart upload.
const maxSkippedParts = 64

// memLimit is how much of a document is held in memory; a larger one is
// spooled to a temporary file.
const memLimit = 8 << 20

// Handler serves POST /api/v1/verify: the request body is the PDF or a
// JAdES signature (JSON or compact JWS), or a multipart upload holding it;
// the response is the JSON report. Bodies above
// maxBytes get 413, other media types 415; bodies above 8 MiB are spooled
// to a temporary file so memory stays bounded. A body that is not a PDF is
// a document like any other: TOTAL-FAILED / FORMAT_FAILURE, as in the CLI.
// Rate limiting belongs to the caller's middleware.
func (v *Verifier) Handler(maxBytes int64) http.Handler {
	return v.handler(maxBytes, nil)
}

// slotFunc takes a slot for one verification once the document is read
// (Register's bound on the verifications running); without one it has
// answered the request itself and returns false.
type slotFunc func(ctx context.Context, w http.ResponseWriter) (release func(), ok bool)

// handler is Handler, with slot (when not nil) taken between reading the
// document and verifying it.
func (v *Verifier) handler(maxBytes int64, slot slotFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost {
			w.Header().Set("Allow", http.MethodPost)
			problem.Error(w, http.StatusMethodNotAllowed, "POST the PDF as the request body")
			return
		}
		body := http.MaxBytesReader(w, r.Body, maxBytes)
		src, perr := documentPart(r.Header.Get("Content-Type"), body)
		if perr != nil {
			if perr.status == http.StatusUnsupportedMediaType {
				w.Header().Set("Accept-Post", AcceptedMediaTypes)
			}
			problem.Error(w, perr.status, perr.detail)
			return
		}
		hint := r.ContentLength // exact for a raw body, an upper bound for a multipart one
		doc, err := v.spool(src, hint)
		if err != nil {
			writeBodyError(w, err)
			return
		}
		defer doc.close()
		if slot != nil {
			release, ok := slot(r.Context(), w)
			if !ok {
				return
			}
			defer release()
		}
		rep, err := v.verifyDocument(r.Context(), doc.ra, doc.size)
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

// requestError is a refusal of the request itself (not of the document).
type requestError struct {
	status int
	detail string
}

// documentPart returns the reader of the document in a request body of
// media type ctype: the body itself, or the first file part of a
// multipart/form-data body.
func documentPart(ctype string, body io.Reader) (io.Reader, *requestError) {
	if ctype == "" {
		return body, nil
	}
	mt, params, err := mime.ParseMediaType(ctype)
	if err != nil {
		return nil, &requestError{http.StatusUnsupportedMediaType, fmt.Sprintf("unreadable Content-Type %q; send one of %s", ctype, AcceptedMediaTypes)}
	}
	switch mt {
	case "application/pdf", "application/octet-stream", "application/json", "application/jose", "application/jose+json":
		return body, nil
	case "multipart/form-data":
	default:
		return nil, &requestError{http.StatusUnsupportedMediaType, fmt.Sprintf("media type %s is not accepted; send one of %s", mt, AcceptedMediaTypes)}
	}
	boundary := params["boundary"]
	if boundary == "" {
		return nil, &requestError{http.StatusBadRequest, "multipart/form-data without a boundary"}
	}
	mr := multipart.NewReader(body, boundary)
	for range maxSkippedParts + 1 {
		p, err := mr.NextPart()
		if errors.Is(err, io.EOF) {
			return nil, &requestError{http.StatusBadRequest, "the multipart upload holds no file part: send the PDF as a file (curl -F file=@doc.pdf)"}
		}
		if err != nil {
			return nil, bodyRequestError(err, "malformed multipart body")
		}
		if p.FileName() != "" {
			return p, nil
		}
		if _, err := io.Copy(io.Discard, p); err != nil {
			return nil, bodyRequestError(err, "malformed multipart body")
		}
	}
	return nil, &requestError{http.StatusBadRequest, fmt.Sprintf("no file part among the first %d parts of the multipart upload", maxSkippedParts)}
}

// bodyRequestError tells a body over the limit (413) from a malformed one.
func bodyRequestError(err error, what string) *requestError {
	var mbe *http.MaxBytesError
	if errors.As(err, &mbe) {
		return &requestError{http.StatusRequestEntityTooLarge, "the document is larger than the limit"}
	}
	return &requestError{http.StatusBadRequest, what}
}

// spooled is a document read from a request: in memory, or in a temporary
// file when larger than memLimit.
type spooled struct {
	ra    io.ReaderAt
	size  int64
	close func()
}

// maxPooledBody is the largest body buffer kept for the next request.
const maxPooledBody = 2 << 20

// spool reads src whole, into memory up to memLimit and into a temporary
// file beyond; hint (the request's Content-Length, -1 if unknown) sizes
// the buffer, up to 1 MiB: beyond that the buffer grows with the bytes
// that actually arrive, so a claimed length reserves nothing.
// The buffer comes from the Verifier's pool and goes back when the
// document is closed: nothing a validation keeps (reports, caches) refers
// to the bytes it read, which it copies.
func (v *Verifier) spool(src io.Reader, hint int64) (*spooled, error) {
	if hint > memLimit {
		return spoolFile(nil, src) // announced as large: straight to disk
	}
	buf, _ := v.bodies.Get().(*bytes.Buffer)
	if buf == nil {
		buf = new(bytes.Buffer)
	}
	buf.Reset()
	release := func() {
		if buf.Cap() <= maxPooledBody {
			v.bodies.Put(buf)
		}
	}
	if hint > 0 {
		buf.Grow(int(min(hint, 1<<20)) + bytes.MinRead)
	}
	n, err := io.CopyN(buf, src, memLimit+1)
	if err != nil && !errors.Is(err, io.EOF) {
		release()
		return nil, err
	}
	if n <= memLimit {
		return &spooled{ra: bytes.NewReader(buf.Bytes()), size: n, close: release}, nil
	}
	defer release()
	return spoolFile(buf.Bytes(), src)
}

// spoolFile writes head and then the rest of src to a temporary file. A
// failure of the file (the disk full: outage.MarkStorage) wraps errSpool;
// one of src is returned as it is.
func spoolFile(head []byte, src io.Reader) (*spooled, error) {
	tmp, err := os.CreateTemp("", "thiqa-verify-*.pdf")
	if err != nil {
		return nil, fmt.Errorf("%w: %w", errSpool, outage.MarkStorage(err))
	}
	cleanup := func() {
		tmp.Close()
		os.Remove(tmp.Name())
	}
	out := &spoolWriter{f: tmp}
	if _, err := out.Write(head); err != nil {
		cleanup()
		return nil, fmt.Errorf("%w: %w", errSpool, outage.MarkStorage(err))
	}
	m, err := io.CopyBuffer(out, src, make([]byte, 64<<10))
	if err != nil {
		cleanup()
		if out.err != nil {
			return nil, fmt.Errorf("%w: %w", errSpool, outage.MarkStorage(out.err))
		}
		return nil, err
	}
	return &spooled{ra: tmp, size: int64(len(head)) + m, close: cleanup}, nil
}

// spoolWriter writes to the temporary file and keeps its error, to tell it
// from an error reading the request.
type spoolWriter struct {
	f   *os.File
	err error
}

func (w *spoolWriter) Write(p []byte) (int, error) {
	n, err := w.f.Write(p)
	if err != nil {
		w.err = err
	}
	return n, err
}

// errSpool marks a failure to buffer the document on this side.
var errSpool = errors.New("cannot buffer the document")

// writeBodyError answers a body that could not be read: too large, this
// side unable to buffer it (503 "try again later" when the disk is full,
// as for any outage), or the client's failure.
func writeBodyError(w http.ResponseWriter, err error) {
	var mbe *http.MaxBytesError
	switch {
	case errors.As(err, &mbe):
		problem.Error(w, http.StatusRequestEntityTooLarge, "the document is larger than the limit")
	case outage.Is(err):
		problem.Unavailable(w, "")
	case errors.Is(err, errSpool):
		problem.Error(w, http.StatusInternalServerError, "cannot buffer the document")
	default:
		problem.Error(w, http.StatusBadRequest, "reading the request body failed")
	}
}

// verifyDocument validates a PDF, or a JAdES signature with its payload
// attached when the document is a JWS (VerifyJAdES) rather than a PDF.
func (v *Verifier) verifyDocument(ctx context.Context, r io.ReaderAt, size int64) (*report.Report, error) {
	if size > 0 && size <= memLimit {
		b := make([]byte, size)
		if n, err := r.ReadAt(b, 0); int64(n) == size && (err == nil || errors.Is(err, io.EOF)) &&
			!bytes.Contains(b[:min(len(b), headerWindow)], []byte("%PDF-")) && LooksLikeJWS(b) {
			return v.VerifyJAdES(ctx, b, nil)
		}
	}
	return v.VerifyPDF(ctx, r, size)
}
