package signing

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"mime"
	"mime/multipart"
	"net/http"
	"os"

	"github.com/thiqa/thiqa/internal/outage"
	"github.com/thiqa/thiqa/signer"
)

// The intake of the PDFs to sign: small bodies in memory (a pooled buffer
// when their length is announced), larger ones streamed to an unlinked
// temporary file, so that a 200 MB PDF never sits in the process's memory.

// inMemoryBody is the largest body kept in memory; larger PDFs are streamed
// to a temporary file.
const inMemoryBody = 2 << 20

// maxBatchPart bounds one document of a batch seal.
const maxBatchPart = 32 << 20

// pooledBody is the largest body buffer kept for reuse.
const pooledBody = 1 << 20

// bodyBuffer returns a buffer for a body of size bytes (plus one, to see a
// longer body), nil when the size is unknown or too large to keep.
func (s *Service) bodyBuffer(size int64) *[]byte {
	if size < 0 || size+1 > pooledBody {
		return nil
	}
	if bp, _ := s.bodies.Get().(*[]byte); bp != nil && int64(cap(*bp)) >= size+1 {
		return bp
	}
	// A fresh one, sized for its size class so it serves similar bodies.
	n := int64(64 << 10)
	for n < size+1 {
		n *= 2
	}
	b := make([]byte, 0, n)
	return &b
}

func (s *Service) releaseBody(bp *[]byte) {
	if bp != nil {
		s.bodies.Put(bp)
	}
}

// readPDF takes the request body: small bodies in memory, larger ones
// streamed to an unlinked temporary file. cleanup must be called. A
// visible signature (doc.Appearance set) may come as multipart/form-data
// with the PDF in part "document" and a PNG in part "image".
func (s *Service) readPDF(w http.ResponseWriter, r *http.Request, doc *DocumentOptions) (pdfInput, func(), error) {
	none := func() {}
	mt, params, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err == nil && mt == "multipart/form-data" && doc != nil && doc.Appearance != nil {
		return s.readMultipart(w, r, params["boundary"], doc.Appearance)
	}
	if err != nil || mt != "application/pdf" {
		return pdfInput{}, none, Refuse(ErrUnsupportedMediaType, "the body must be a PDF sent as application/pdf (or, for a visible signature with an image, multipart/form-data with parts document and image)")
	}
	limit := s.cfg.MaxDocumentBytes
	if r.ContentLength > limit {
		return pdfInput{}, none, Refuse(ErrTooLarge, "the document exceeds %d bytes", limit)
	}
	body := http.MaxBytesReader(w, r.Body, limit)
	bp := s.bodyBuffer(r.ContentLength)
	var buf []byte
	if bp != nil {
		buf = *bp
	}
	in, cleanup, err := readDocument(body, r.ContentLength, s.cfg.TempDir, limit, buf)
	return in, func() { cleanup(); s.releaseBody(bp) }, err
}

// readDocument reads one document from body (size -1 when unknown). buf,
// when large enough, holds a small document of known size.
func readDocument(body io.Reader, size int64, tempDir string, limit int64, buf []byte) (pdfInput, func(), error) {
	none := func() {}
	tooBig := func(err error) error {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return Refuse(ErrTooLarge, "the document exceeds %d bytes", limit)
		}
		return Refuse(ErrBadRequest, "reading the document: %v", err)
	}
	if size <= inMemoryBody {
		// Small documents stay in memory: the announced size in one
		// allocation, or up to inMemoryBody when the size is unknown.
		var b []byte
		var err error
		if size >= 0 {
			if int64(cap(buf)) >= size+1 {
				b = buf[:size+1]
			} else {
				b = make([]byte, size+1)
			}
			var n int
			n, err = io.ReadFull(body, b)
			b = b[:n]
			if int64(n) < size && err != nil {
				if errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) {
					return pdfInput{}, none, Refuse(ErrBadRequest, "the body is shorter than its Content-Length")
				}
				return pdfInput{}, none, tooBig(err)
			}
		} else {
			b, err = io.ReadAll(io.LimitReader(body, inMemoryBody+1))
			if err != nil {
				return pdfInput{}, none, tooBig(err)
			}
		}
		if len(b) <= inMemoryBody && (size < 0 || int64(len(b)) == size) {
			return pdfInput{r: signer.Bytes(b), size: int64(len(b))}, none, checkPDFHeader(bytes.NewReader(b))
		}
		body = io.MultiReader(bytes.NewReader(b), body)
	}
	f, err := os.CreateTemp(tempDir, "thiqa-sign-*.pdf")
	if err != nil {
		return pdfInput{}, none, fmt.Errorf("temporary file: %w", outage.MarkStorage(err))
	}
	os.Remove(f.Name()) // the open descriptor keeps it until closed
	cleanup := func() { f.Close() }
	out := &fileWriter{f: f}
	n, err := io.Copy(out, io.LimitReader(body, limit+1))
	if err != nil {
		cleanup()
		if out.err != nil {
			// This side's failure (the disk full: try again later), not
			// the client's.
			return pdfInput{}, none, fmt.Errorf("temporary file: %w", outage.MarkStorage(out.err))
		}
		return pdfInput{}, none, tooBig(err)
	}
	if n > limit {
		cleanup()
		return pdfInput{}, none, Refuse(ErrTooLarge, "the document exceeds %d bytes", limit)
	}
	return pdfInput{r: f, size: n}, cleanup, checkPDFHeader(io.NewSectionReader(f, 0, n))
}

// fileWriter writes to a temporary file and keeps its error, to tell it
// from an error reading the request.
type fileWriter struct {
	f   *os.File
	err error
}

func (w *fileWriter) Write(p []byte) (int, error) {
	n, err := w.f.Write(p)
	if err != nil {
		w.err = err
	}
	return n, err
}

// checkPDFHeader refuses a body that does not start like a PDF.
func checkPDFHeader(r io.Reader) error {
	var head [1024]byte
	n, _ := io.ReadFull(r, head[:])
	if !bytes.Contains(head[:n], []byte("%PDF-")) {
		return Refuse(ErrBadRequest, "not a PDF document (no %%PDF- header)")
	}
	return nil
}

// pngSignature starts every PNG file.
const pngSignature = "\x89PNG\r\n\x1a\n"

// readMultipart reads a visible signature's request: part "document" (the
// PDF) and, optionally, part "image" (a PNG of at most
// signer.MaxImageBytes), into ap.PNG.
func (s *Service) readMultipart(w http.ResponseWriter, r *http.Request, boundary string, ap *AppearanceRequest) (pdfInput, func(), error) {
	none := func() {}
	if boundary == "" {
		return pdfInput{}, none, Refuse(ErrBadRequest, "the multipart body has no boundary")
	}
	limit := s.cfg.MaxDocumentBytes
	mr := multipart.NewReader(http.MaxBytesReader(w, r.Body, limit+signer.MaxImageBytes+64<<10), boundary)
	var in pdfInput
	cleanup := none
	fail := func(err error) (pdfInput, func(), error) {
		cleanup()
		return pdfInput{}, none, err
	}
	haveDoc := false
	for parts := 0; ; parts++ {
		part, err := mr.NextPart()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			var mbe *http.MaxBytesError
			if errors.As(err, &mbe) {
				return fail(Refuse(ErrTooLarge, "the request exceeds %d bytes", limit+signer.MaxImageBytes))
			}
			return fail(Refuse(ErrBadRequest, "reading the multipart body: %v", err))
		}
		switch name := part.FormName(); {
		case parts >= 2:
			part.Close()
			return fail(Refuse(ErrBadRequest, "the multipart body holds more than a document and an image"))
		case name == "document" && !haveDoc:
			in, cleanup, err = readDocument(part, -1, s.cfg.TempDir, limit, nil)
			part.Close()
			if err != nil {
				return fail(err)
			}
			haveDoc = true
		case name == "image" && ap.PNG == nil:
			b, err := io.ReadAll(io.LimitReader(part, signer.MaxImageBytes+1))
			part.Close()
			switch {
			case err != nil:
				return fail(Refuse(ErrBadRequest, "reading the image: %v", err))
			case len(b) > signer.MaxImageBytes:
				return fail(Refuse(ErrTooLarge, "the image exceeds %d bytes", signer.MaxImageBytes))
			case !bytes.HasPrefix(b, []byte(pngSignature)):
				return fail(Refuse(ErrBadRequest, "the image must be a PNG"))
			}
			ap.PNG = b
		default:
			part.Close()
			return fail(Refuse(ErrBadRequest, "unexpected part %q: send part document (the PDF) and optionally part image (a PNG)", name))
		}
	}
	if !haveDoc {
		return fail(Refuse(ErrBadRequest, "the multipart body has no part named document"))
	}
	return in, cleanup, nil
}
