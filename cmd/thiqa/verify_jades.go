package main

import (
	"context"
	"errors"
	"fmt"
	"os"

	"github.com/thiqa/thiqa/verify"
	"github.com/thiqa/thiqa/verify/report"
)

// verifyFile validates f (verify.VerifyFile): a JAdES signature, with the
// detached payload from payloadFile when given, or else a PDF.
func verifyFile(ctx context.Context, v *verify.Verifier, f *os.File, size int64, payloadFile string) (*report.Report, error) {
	var payload func() ([]byte, error)
	if payloadFile != "" {
		payload = func() ([]byte, error) {
			st, err := os.Stat(payloadFile)
			if err != nil {
				return nil, fmt.Errorf("--payload: %w", err)
			}
			if st.Size() > verify.MaxJWSBytes {
				return nil, fmt.Errorf("--payload: larger than %d bytes", verify.MaxJWSBytes)
			}
			b, err := os.ReadFile(payloadFile)
			if err != nil {
				return nil, fmt.Errorf("--payload: %w", err)
			}
			return b, nil
		}
	}
	rep, err := v.VerifyFile(ctx, f, size, payload)
	if errors.Is(err, verify.ErrPayloadForPDF) {
		return nil, errors.New("--payload is for a JAdES signature, not a PDF")
	}
	return rep, err
}
