package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/thiqa/thiqa/verify"
	"github.com/thiqa/thiqa/verify/report"
)

// maxJWSFile bounds a JAdES signature or its detached payload read by
// `thiqa verify`.
const maxJWSFile = 64 << 20

// verifyFile validates f: a JAdES signature (JSON or compact JWS, with the
// detached payload from payloadFile when given) or else a PDF.
func verifyFile(ctx context.Context, v *verify.Verifier, f *os.File, size int64, payloadFile string) (*report.Report, error) {
	head := make([]byte, min(size, 1024))
	if _, err := f.ReadAt(head, 0); err != nil && !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("reading the document: %w", err)
	}
	if bytes.Contains(head, []byte("%PDF-")) || size > maxJWSFile {
		if payloadFile != "" {
			return nil, errors.New("--payload is for a JAdES signature, not a PDF")
		}
		return v.VerifyPDF(ctx, f, size)
	}
	b, err := io.ReadAll(io.NewSectionReader(f, 0, size))
	if err != nil {
		return nil, fmt.Errorf("reading the document: %w", err)
	}
	if !verify.LooksLikeJWS(b) {
		return v.VerifyPDF(ctx, f, size) // neither: the PDF verdict says why
	}
	var payload []byte
	if payloadFile != "" {
		st, err := os.Stat(payloadFile)
		if err != nil {
			return nil, fmt.Errorf("--payload: %w", err)
		}
		if st.Size() > maxJWSFile {
			return nil, fmt.Errorf("--payload: larger than %d bytes", maxJWSFile)
		}
		if payload, err = os.ReadFile(payloadFile); err != nil {
			return nil, fmt.Errorf("--payload: %w", err)
		}
	}
	return v.VerifyJAdES(ctx, b, payload)
}
