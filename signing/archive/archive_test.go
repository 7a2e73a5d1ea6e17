package archive

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/thiqa/thiqa/signer"
	"github.com/thiqa/thiqa/signing"
	"github.com/thiqa/thiqa/verify/report"
)

// fakeVerifier judges a file by its content: "none" has no document
// time-stamp, "fresh" one whose TSA certificate is valid for a year,
// "expiring" one that expires in a week.
type fakeVerifier struct{ now time.Time }

func (f fakeVerifier) VerifyPDF(_ context.Context, r io.ReaderAt, size int64) (*report.Report, error) {
	b := make([]byte, size)
	if _, err := r.ReadAt(b, 0); err != nil && !errors.Is(err, io.EOF) {
		return nil, err
	}
	sig := report.Signature{Kind: "signature", SignatureIntact: true, Signer: &report.Signer{NotAfter: f.now.AddDate(5, 0, 0)}}
	ts := func(until time.Time) report.Signature {
		return report.Signature{Kind: "document-timestamp", SignatureIntact: true, Revision: 1, Signer: &report.Signer{NotAfter: until}}
	}
	switch strings.TrimSpace(string(b)) {
	case "fresh":
		return &report.Report{Signatures: []report.Signature{sig, ts(f.now.AddDate(1, 0, 0))}}, nil
	case "expiring", "expiring fail":
		return &report.Report{Signatures: []report.Signature{sig, ts(f.now.AddDate(0, 0, 7))}}, nil
	case "none":
		return &report.Report{Signatures: []report.Signature{sig}}, nil
	}
	return &report.Report{}, nil
}

// TestJob: documents that need it are renewed in place, the others are
// skipped with the reason, a failure is counted and leaves the file whole.
func TestJob(t *testing.T) {
	dir := t.TempDir()
	now := time.Now()
	for name, body := range map[string]string{"a.pdf": "none", "b.pdf": "fresh", "c.PDF": "expiring", "d.pdf": "fail", ".hidden.pdf": "none", "e.txt": "none"} {
		if name == "d.pdf" {
			body = "expiring fail"
		}
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o640); err != nil {
			t.Fatal(err)
		}
	}
	ext := func(_ context.Context, in *os.File, size int64, out io.Writer) ([]string, error) {
		b, _ := io.ReadAll(in)
		if strings.Contains(string(b), "fail") {
			_, _ = out.Write([]byte("partial"))
			return nil, errors.New("TSA down")
		}
		_, err := out.Write([]byte("fresh\n"))
		return []string{"CN=x"}, err
	}
	var out bytes.Buffer
	j := Job{Extend: ext, Verifier: fakeVerifier{now: now}, RenewBefore: 90 * 24 * time.Hour, Timeout: time.Minute, Now: func() time.Time { return now }, Out: &out}
	err := j.Run(context.Background(), dir)
	var failed *FailedError
	if !errors.As(err, &failed) || failed.N != 1 || err.Error() != "1 document(s) could not be renewed" {
		t.Fatalf("Run: %v\n%s", err, out.String())
	}
	if !strings.Contains(out.String(), "4 PDF(s): 2 renewed, 1 skipped, 1 failed") || !strings.Contains(out.String(), "warning: no revocation data for CN=x") {
		t.Fatalf("output:\n%s", out.String())
	}
	for name, want := range map[string]string{"a.pdf": "fresh\n", "b.pdf": "fresh", "c.PDF": "fresh\n", "d.pdf": "expiring fail"} {
		if b, _ := os.ReadFile(filepath.Join(dir, name)); string(b) != want {
			t.Errorf("%s: %q, want %q", name, b, want)
		}
	}
	if st, _ := os.Stat(filepath.Join(dir, "a.pdf")); st.Mode().Perm() != 0o640 {
		t.Errorf("renewed file mode %v", st.Mode())
	}
}

// refusal is a remote extender's refusal with its HTTP status.
type refusal int

func (r refusal) Error() string   { return "refused" }
func (r refusal) HTTPStatus() int { return int(r) }

// TestJobServerRefusal: a server's 422 (the document cannot be extended)
// skips the document; any other refusal fails it.
func TestJobServerRefusal(t *testing.T) {
	now := time.Now()
	for status, want := range map[refusal]string{422: "1 skipped, 0 failed", 503: "0 skipped, 1 failed"} {
		dir := t.TempDir()
		if err := os.WriteFile(filepath.Join(dir, "a.pdf"), []byte("none"), 0o640); err != nil {
			t.Fatal(err)
		}
		ext := func(context.Context, *os.File, int64, io.Writer) ([]string, error) {
			return nil, fmt.Errorf("a.pdf: %w", status)
		}
		var out bytes.Buffer
		j := Job{Extend: ext, Verifier: fakeVerifier{now: now}, RenewBefore: time.Hour, Timeout: time.Minute, Now: func() time.Time { return now }, Out: &out}
		_ = j.Run(context.Background(), dir)
		if !strings.Contains(out.String(), want) {
			t.Errorf("%d: output:\n%s", status, out.String())
		}
	}
}

// fakeService extends by copying and names one certificate without
// revocation data (Extending).
type fakeService struct{ actor string }

func (f *fakeService) Extend(_ context.Context, actor string, _ signer.Level, _ bool, in io.ReaderAt, size int64,
	out func(int64, []string) (io.Writer, error)) (*signing.ExtendOutcome, error) {
	f.actor = actor
	w, err := out(size, []string{"CN=y"})
	if err != nil {
		return nil, err
	}
	_, err = io.Copy(w, io.NewSectionReader(in, 0, size))
	return nil, err
}

// TestExtendFile: an in-process extension of one file writes it whole and
// reports the certificates without revocation data.
func TestExtendFile(t *testing.T) {
	dir := t.TempDir()
	in, out := filepath.Join(dir, "in.pdf"), filepath.Join(dir, "out.pdf")
	if err := os.WriteFile(in, []byte("signed"), 0o600); err != nil {
		t.Fatal(err)
	}
	s := &fakeService{}
	var stdout, stderr bytes.Buffer
	if err := ExtendFile(context.Background(), InProcess(s, "cli:op", signer.LevelBLTA, false), in, out, time.Minute, &stdout, &stderr); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(out); string(b) != "signed" || s.actor != "cli:op" {
		t.Fatalf("extended %q by %q", b, s.actor)
	}
	if !strings.Contains(stdout.String(), "extended "+in+" -> "+out+" (6 bytes, ") || stderr.String() != "warning: no revocation data for CN=y\n" {
		t.Fatalf("stdout %q, stderr %q", stdout.String(), stderr.String())
	}
	if err := ExtendFile(context.Background(), InProcess(s, "cli:op", signer.LevelBLTA, false), filepath.Join(dir, "missing.pdf"), out, time.Minute, &stdout, &stderr); err == nil ||
		!strings.HasPrefix(err.Error(), "extending ") {
		t.Fatalf("a missing file: %v", err)
	}
}

// verifierFunc is a Verifier from a function.
type verifierFunc func() *report.Report

func (f verifierFunc) VerifyPDF(context.Context, io.ReaderAt, int64) (*report.Report, error) {
	return f(), nil
}

// TestJobJustRenewedNotProven: a document whose newest time-stamp was made
// an hour ago by a TSA whose certificate expires within the window is not
// renewed again, although the job's offline verification cannot make that
// time-stamp TOTAL-PASSED (so it has no provenSigningTime): the intact
// token's time is what keeps the job idempotent.
func TestJobJustRenewedNotProven(t *testing.T) {
	now := time.Now()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "a.pdf"), []byte("x"), 0o640); err != nil {
		t.Fatal(err)
	}
	v := verifierFunc(func() *report.Report {
		return &report.Report{Signatures: []report.Signature{
			{Kind: "signature", SignatureIntact: true, Signer: &report.Signer{NotAfter: now.AddDate(5, 0, 0)}},
			{Kind: "document-timestamp", SignatureIntact: true, Revision: 1, Indication: report.Indeterminate, SubIndication: report.TryLater,
				Signer:     &report.Signer{NotAfter: now.AddDate(0, 0, 7)},
				Timestamps: []report.Timestamp{{Kind: "document", Time: now.Add(-time.Hour), Indication: report.Indeterminate, SubIndication: report.TryLater, Intact: true}}},
		}}
	})
	ext := func(context.Context, *os.File, int64, io.Writer) ([]string, error) {
		t.Error("renewed again")
		return nil, errors.New("renewed again")
	}
	var out bytes.Buffer
	j := Job{Extend: ext, Verifier: v, RenewBefore: 90 * 24 * time.Hour, Timeout: time.Minute, Now: func() time.Time { return now }, Out: &out}
	if err := j.Run(context.Background(), dir); err != nil || !strings.Contains(out.String(), "skipped: renewed at") {
		t.Fatalf("Run: %v\n%s", err, out.String())
	}
}
