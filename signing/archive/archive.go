// Package archive keeps signed PDFs verifiable for the long term
// (EN 319 142-1 §5.5): it extends a document in place without ever leaving
// it half written (ExtendInto), renews every PDF of a folder whose last
// document time-stamp needs it (Job), with an Extender in process or
// through a server (package signing/client).
package archive

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/thiqa/thiqa/signer"
	"github.com/thiqa/thiqa/signing"
	"github.com/thiqa/thiqa/verify/report"
)

// Extender extends one document, written to out only on success; missing
// names the certificates it found no revocation data for.
type Extender func(ctx context.Context, in *os.File, size int64, out io.Writer) (missing []string, err error)

// statusError is a server's refusal of a document, with its HTTP status
// (a remote Extender's error, e.g. *client.RefusedError): 422 is the
// server's verdict that the document cannot be extended, as
// signing.ErrBroken or signing.ErrNothingToExtend are in process.
type statusError interface {
	error
	HTTPStatus() int
}

// justRenewed is how recent a document time-stamp keeps the archive job
// from renewing again, whatever its TSA certificate: the job is idempotent
// even when the TSA's own certificate expires within the window.
const justRenewed = 24 * time.Hour

// Job renews the PDFs of a folder whose last document time-stamp
// needs it (EN 319 142-1 §5.5): each file is judged, extended into a
// temporary file and renamed over the original, so an interrupted run
// leaves every file whole and the next run resumes where it stopped.
type Job struct {
	// Extend extends one document.
	Extend Extender
	// Verifier judges whether a document needs renewing; offline is
	// enough (the structure and the times, not revocation): the
	// extension itself judges each document again.
	Verifier PDFVerifier
	// RenewBefore is how long before its TSA certificate expires the
	// last document time-stamp is renewed.
	RenewBefore time.Duration
	// Timeout bounds the extension of one document.
	Timeout time.Duration
	// Now is the clock (time.Now).
	Now func() time.Time
	// Out receives a line per file and the summary.
	Out io.Writer
}

// PDFVerifier validates a PDF (*verify.Verifier).
type PDFVerifier interface {
	VerifyPDF(ctx context.Context, r io.ReaderAt, size int64) (*report.Report, error)
}

// FailedError says how many documents of a run could not be renewed.
type FailedError struct{ N int }

// Error says how many documents could not be renewed.
func (e *FailedError) Error() string { return fmt.Sprintf("%d document(s) could not be renewed", e.N) }

// Run walks dir and prints a line per file (what was done, or skipped and
// why) and a summary; it fails with a *FailedError when a file could not
// be renewed.
func (j Job) Run(ctx context.Context, dir string) error {
	var files []string
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.IsDir() && strings.EqualFold(filepath.Ext(p), ".pdf") && !strings.HasPrefix(d.Name(), ".") {
			files = append(files, p)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("reading %s: %w", dir, err)
	}
	sort.Strings(files)
	var renewed, skipped, failed int
	for i, f := range files {
		if err := ctx.Err(); err != nil {
			return err
		}
		prefix := fmt.Sprintf("%s %d/%d %s", bar(i+1, len(files)), i+1, len(files), f)
		renew, why := j.needs(ctx, f)
		if !renew {
			skipped++
			fmt.Fprintf(j.Out, "%s: skipped: %s\n", prefix, why)
			continue
		}
		fctx, cancel := context.WithTimeout(ctx, j.Timeout)
		missing, _, err := ExtendInto(fctx, j.Extend, f, f)
		cancel()
		var re statusError
		switch {
		case errors.Is(err, signing.ErrBroken) || errors.Is(err, signing.ErrNothingToExtend) || (errors.As(err, &re) && re.HTTPStatus() == 422):
			skipped++
			fmt.Fprintf(j.Out, "%s: skipped: %v\n", prefix, err)
		case err != nil:
			failed++
			fmt.Fprintf(j.Out, "%s: FAILED: %v\n", prefix, err)
		default:
			renewed++
			fmt.Fprintf(j.Out, "%s: renewed (%s)\n", prefix, why)
			for _, m := range missing {
				fmt.Fprintf(j.Out, "    warning: no revocation data for %s\n", m)
			}
		}
	}
	fmt.Fprintf(j.Out, "archive %s: %d PDF(s): %d renewed, %d skipped, %d failed\n", dir, len(files), renewed, skipped, failed)
	if failed > 0 {
		return &FailedError{N: failed}
	}
	return nil
}

// needs says whether f needs a new document time-stamp, and why (or why
// not).
func (j Job) needs(ctx context.Context, f string) (bool, string) {
	in, err := os.Open(f)
	if err != nil {
		return false, err.Error()
	}
	defer in.Close()
	st, err := in.Stat()
	if err != nil {
		return false, err.Error()
	}
	rep, err := j.Verifier.VerifyPDF(ctx, in, st.Size())
	if err != nil {
		return false, err.Error()
	}
	if len(rep.Signatures) == 0 {
		if len(rep.Errors) > 0 {
			return false, "not a readable signed PDF: " + rep.Errors[0]
		}
		return false, "no signature"
	}
	var last *report.Signature
	for i := range rep.Signatures {
		s := &rep.Signatures[i]
		if s.Kind == "document-timestamp" && s.SignatureIntact && s.Signer != nil && (last == nil || s.Revision > last.Revision) {
			last = s
		}
	}
	if last == nil {
		return true, "no document time-stamp yet"
	}
	now := j.Now()
	expires := last.Signer.NotAfter
	day := func(t time.Time) string { return t.UTC().Format("2006-01-02") }
	if expires.After(now.Add(j.RenewBefore)) {
		return false, fmt.Sprintf("the last time-stamp's TSA certificate is valid until %s, beyond the renewal window", day(expires))
	}
	// The intact token's own time, not provenSigningTime: the job verifies
	// offline (and, with --url, without trust anchors), so the time-stamp it
	// has just added is seldom TOTAL-PASSED here and proves no time.
	if t, ok := tokenTime(last); ok && now.Sub(t) < justRenewed {
		return false, fmt.Sprintf("renewed at %s, but that TSA certificate expires on %s, within the window: renew the TSA unit's certificate", t.UTC().Format(time.RFC3339), day(expires))
	}
	return true, fmt.Sprintf("the last time-stamp's TSA certificate expires on %s", day(expires))
}

// tokenTime is the time an intact document time-stamp's token gives, if
// any.
func tokenTime(s *report.Signature) (time.Time, bool) {
	for _, ts := range s.Timestamps {
		if ts.Kind == "document" && ts.Intact && !ts.Time.IsZero() {
			return ts.Time, true
		}
	}
	return time.Time{}, false
}

// bar draws progress as [#####-----].
func bar(done, total int) string {
	const width = 20
	n := width
	if total > 0 {
		n = done * width / total
	}
	return "[" + strings.Repeat("#", n) + strings.Repeat("-", width-n) + "]"
}

// ExtendInto extends inPath with ext, writing to a temporary file next to outPath, synced and
// renamed over outPath (which may be inPath) only on success.
func ExtendInto(ctx context.Context, ext Extender, inPath, outPath string) ([]string, int64, error) {
	in, err := os.Open(inPath)
	if err != nil {
		return nil, 0, err
	}
	defer in.Close()
	st, err := in.Stat()
	if err != nil {
		return nil, 0, err
	}
	tmp, err := os.CreateTemp(filepath.Dir(outPath), ".extend-*.pdf")
	if err != nil {
		return nil, 0, err
	}
	defer os.Remove(tmp.Name())
	missing, err := ext(ctx, in, st.Size(), tmp)
	if err == nil {
		err = tmp.Sync()
	}
	n, _ := tmp.Seek(0, io.SeekCurrent)
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil && n == 0 {
		err = errors.New("nothing was written")
	}
	if err == nil {
		err = os.Chmod(tmp.Name(), st.Mode().Perm())
	}
	if err == nil {
		err = os.Rename(tmp.Name(), outPath)
	}
	return missing, n, err
}

// Extending is the signing service as an in-process Extender uses it
// (*signing.Service).
type Extending interface {
	Extend(ctx context.Context, actor string, level signer.Level, force bool, in io.ReaderAt, size int64,
		out func(size int64, missing []string) (io.Writer, error)) (*signing.ExtendOutcome, error)
}

// InProcess extends to level with the signing service s on behalf of
// actor; force extends even a document whose signature does not verify.
func InProcess(s Extending, actor string, level signer.Level, force bool) Extender {
	return func(ctx context.Context, in *os.File, size int64, out io.Writer) ([]string, error) {
		var missing []string
		_, err := s.Extend(ctx, actor, level, force, in, size, func(_ int64, m []string) (io.Writer, error) {
			missing = m
			return out, nil
		})
		return missing, err
	}
}

// ExtendFile extends inPath into outPath within timeout (ExtendInto) and
// says so as `thiqa extend --in --out` does: a warning on warn for each
// certificate without revocation data, then one line on out.
func ExtendFile(ctx context.Context, ext Extender, inPath, outPath string, timeout time.Duration, out, warn io.Writer) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	start := time.Now()
	missing, n, err := ExtendInto(ctx, ext, inPath, outPath)
	if err != nil {
		return fmt.Errorf("extending %s: %w", inPath, err)
	}
	for _, m := range missing {
		fmt.Fprintf(warn, "warning: no revocation data for %s\n", m)
	}
	fmt.Fprintf(out, "extended %s -> %s (%d bytes, %s)\n", inPath, outPath, n, time.Since(start).Round(time.Millisecond))
	return nil
}
