package verify

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/thiqa/thiqa/verify/report"
)

// MaxJWSBytes bounds a JAdES signature, or its detached payload, that
// VerifyFile reads into memory; a larger document is judged as a PDF.
const MaxJWSBytes = 64 << 20

// ErrPayloadForPDF is returned by VerifyFile when a detached payload comes
// with a PDF: only a JAdES signature has one.
var ErrPayloadForPDF = errors.New("a detached payload is for a JAdES signature, not a PDF")

// VerifyFile validates a document of size bytes whatever its kind: a JAdES
// signature (JSON or compact JWS) when it is not a PDF and looks like one,
// else a PDF (whose verdict says why when it is neither). payload, when
// not nil, reads the detached payload of a JAdES signature.
func (v *Verifier) VerifyFile(ctx context.Context, r io.ReaderAt, size int64, payload func() ([]byte, error)) (*report.Report, error) {
	head := make([]byte, min(size, 1024))
	if _, err := r.ReadAt(head, 0); err != nil && !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("reading the document: %w", err)
	}
	if bytes.Contains(head, []byte("%PDF-")) || size > MaxJWSBytes {
		if payload != nil {
			return nil, ErrPayloadForPDF
		}
		return v.VerifyPDF(ctx, r, size)
	}
	b, err := io.ReadAll(io.NewSectionReader(r, 0, size))
	if err != nil {
		return nil, fmt.Errorf("reading the document: %w", err)
	}
	if !LooksLikeJWS(b) {
		return v.VerifyPDF(ctx, r, size) // neither: the PDF verdict says why
	}
	var p []byte
	if payload != nil {
		if p, err = payload(); err != nil {
			return nil, err
		}
	}
	return v.VerifyJAdES(ctx, b, p)
}

// ReadPayloadFile reads the detached payload of a JAdES signature from the
// file path (VerifyFile's payload), refusing one larger than MaxJWSBytes
// before reading it.
func ReadPayloadFile(path string) ([]byte, error) {
	st, err := os.Stat(path)
	if err != nil {
		return nil, err
	}
	if st.Size() > MaxJWSBytes {
		return nil, fmt.Errorf("larger than %d bytes", MaxJWSBytes)
	}
	return os.ReadFile(path)
}

// OpenDocument opens the regular file at path for VerifyFile and returns
// its size; the caller closes it.
func OpenDocument(path string) (*os.File, int64, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, 0, fmt.Errorf("opening the document: %w", err)
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, 0, fmt.Errorf("reading the document: %w", err)
	}
	if !st.Mode().IsRegular() {
		f.Close()
		return nil, 0, fmt.Errorf("%s is not a regular file", path)
	}
	return f, st.Size(), nil
}
