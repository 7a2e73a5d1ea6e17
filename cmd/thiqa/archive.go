package main

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

	"github.com/thiqa/thiqa/signing"
	"github.com/thiqa/thiqa/verify/report"
)

// justRenewed is how recent a document time-stamp keeps the archive job
// from renewing again, whatever its TSA certificate: the job is idempotent
// even when the TSA's own certificate expires within the window.
const justRenewed = 24 * time.Hour

// archiveJob renews the PDFs of a folder whose last document time-stamp
// needs it (EN 319 142-1 §5.5): each file is judged, extended into a
// temporary file and renamed over the original, so an interrupted run
// leaves every file whole and the next run resumes where it stopped.
type archiveJob struct {
	env         *cliEnv
	ext         extender
	settings    *verifierSettings
	renewBefore time.Duration
	timeout     time.Duration
	now         func() time.Time
}

// run walks dir and prints a line per file (what was done, or skipped and
// why) and a summary; it fails when a file could not be renewed.
func (j archiveJob) run(ctx context.Context, dir string) error {
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
	// Offline: the job needs the structure and the times, not a verdict on
	// revocation; the extension itself judges each document again.
	s := *j.settings
	s.online, s.timeout = false, 10*time.Second
	v := newVerifier(s)
	var renewed, skipped, failed int
	for i, f := range files {
		if err := ctx.Err(); err != nil {
			return err
		}
		prefix := fmt.Sprintf("%s %d/%d %s", bar(i+1, len(files)), i+1, len(files), f)
		renew, why := j.needs(ctx, v, f)
		if !renew {
			skipped++
			fmt.Fprintf(j.env.stdout, "%s: skipped: %s\n", prefix, why)
			continue
		}
		fctx, cancel := context.WithTimeout(ctx, j.timeout)
		missing, _, err := extendInto(fctx, j.ext, f, f)
		cancel()
		var re *refusedError
		switch {
		case errors.Is(err, signing.ErrBroken) || errors.Is(err, signing.ErrNothingToExtend) || (errors.As(err, &re) && re.status == 422):
			skipped++
			fmt.Fprintf(j.env.stdout, "%s: skipped: %v\n", prefix, err)
		case err != nil:
			failed++
			fmt.Fprintf(j.env.stdout, "%s: FAILED: %v\n", prefix, err)
		default:
			renewed++
			fmt.Fprintf(j.env.stdout, "%s: renewed (%s)\n", prefix, why)
			for _, m := range missing {
				fmt.Fprintf(j.env.stdout, "    warning: no revocation data for %s\n", m)
			}
		}
	}
	fmt.Fprintf(j.env.stdout, "archive %s: %d PDF(s): %d renewed, %d skipped, %d failed\n", dir, len(files), renewed, skipped, failed)
	if failed > 0 {
		return withExit(1, fmt.Errorf("%d document(s) could not be renewed", failed))
	}
	return nil
}

// needs says whether f needs a new document time-stamp, and why (or why
// not).
func (j archiveJob) needs(ctx context.Context, v interface {
	VerifyPDF(context.Context, io.ReaderAt, int64) (*report.Report, error)
}, f string) (bool, string) {
	in, err := os.Open(f)
	if err != nil {
		return false, err.Error()
	}
	defer in.Close()
	st, err := in.Stat()
	if err != nil {
		return false, err.Error()
	}
	rep, err := v.VerifyPDF(ctx, in, st.Size())
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
	now := j.now()
	expires := last.Signer.NotAfter
	day := func(t time.Time) string { return t.UTC().Format("2006-01-02") }
	if expires.After(now.Add(j.renewBefore)) {
		return false, fmt.Sprintf("the last time-stamp's TSA certificate is valid until %s, beyond the renewal window", day(expires))
	}
	if t := last.ProvenSigningTime; t != nil && now.Sub(*t) < justRenewed {
		return false, fmt.Sprintf("renewed at %s, but that TSA certificate expires on %s, within the window: renew the TSA unit's certificate", t.UTC().Format(time.RFC3339), day(expires))
	}
	return true, fmt.Sprintf("the last time-stamp's TSA certificate expires on %s", day(expires))
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
