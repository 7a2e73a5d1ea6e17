package signing

// Long-term archive: POST /api/v1/extend takes a PDF signed anywhere, has
// the verifier judge it, and adds what validation needs (one DSS update:
// certificates, OCSP responses, CRLs for every signature and time-stamp,
// taken from the document, this deployment or online) and, for B-LTA, a
// document time-stamp from this TSA. A document whose signatures do not
// verify is refused with the verifier's report, unless force=true: nothing
// is time-stamped over a broken document without the caller saying so.

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"time"

	"github.com/thiqa/thiqa/internal/audit"
	"github.com/thiqa/thiqa/internal/auth"
	"github.com/thiqa/thiqa/internal/problem"
	"github.com/thiqa/thiqa/signer"
	"github.com/thiqa/thiqa/verify/report"
)

// ActionExtend records an extension to B-LT or B-LTA.
const ActionExtend = "document.extend"

// DocumentVerifier judges a PDF before it is extended (verify.Verifier
// satisfies it).
type DocumentVerifier interface {
	VerifyPDF(ctx context.Context, r io.ReaderAt, size int64) (*report.Report, error)
}

// ErrNothingToExtend: the document holds no signature or time-stamp.
var ErrNothingToExtend = errors.New("the document has no signature to extend")

// BrokenError refuses to extend a document whose signatures do not verify;
// errors.Is(err, ErrBroken) holds. Report is the verifier's.
type BrokenError struct {
	Report *report.Report
}

// ErrBroken is the kind of a BrokenError.
var ErrBroken = errors.New("a signature of the document does not verify")

// Error implements the error interface.
func (e *BrokenError) Error() string {
	for _, s := range e.Report.Signatures {
		if broken(s) {
			return fmt.Sprintf("%s %q does not verify (%s %s): nothing was added; force=true (thiqa extend --force) extends it anyway", s.Kind, s.Field, s.Indication, s.SubIndication)
		}
	}
	return ErrBroken.Error()
}

// Is makes errors.Is(err, ErrBroken) true.
func (e *BrokenError) Is(target error) bool { return target == ErrBroken }

// broken reports a signature that must not be time-stamped over silently:
// not intact, or failed outright.
func broken(s report.Signature) bool {
	return s.Indication == report.TotalFailed || !s.SignatureIntact
}

// ExtendOutcome describes an extension.
type ExtendOutcome struct {
	// Before is the verifier's report on the document as received.
	Before *report.Report
	// Result is the engine's account (level, missing revocation data).
	Result *signer.ExtendResult
}

// Extend extends the PDF in (size bytes) to level (B-LT or B-LTA) for
// actor, writing it to the writer out returns once it is complete and its
// audit record written. force extends a document whose signatures do not
// verify (the record says so). Refusals and failures are audited too.
func (s *Service) Extend(ctx context.Context, actor string, level signer.Level, force bool, in io.ReaderAt, size int64,
	out func(size int64, missing []string) (io.Writer, error)) (*ExtendOutcome, error) {
	rec := extendRecord{actor: actor, level: level.String(), size: size, force: force}
	res, err := s.extend(ctx, &rec, level, force, in, size, out)
	if err != nil && !errors.Is(err, ErrAudit) {
		_, msg, outcome := Classify(err)
		if aerr := s.auditExtend(ctx, rec, outcome, msg); aerr != nil {
			err = refusalUnrecorded(err, aerr)
		}
	}
	return res, err
}

func (s *Service) extend(ctx context.Context, rec *extendRecord, level signer.Level, force bool, in io.ReaderAt, size int64,
	out func(size int64, missing []string) (io.Writer, error)) (*ExtendOutcome, error) {
	if level != signer.LevelBLT && level != signer.LevelBLTA {
		return nil, Refuse(ErrBadRequest, "level must be B-LT or B-LTA, got %s", level)
	}
	if s.verifier == nil {
		return nil, errors.New("no verifier configured for extensions")
	}
	h := sha256.New()
	if _, err := io.Copy(h, io.NewSectionReader(in, 0, size)); err != nil {
		return nil, fmt.Errorf("reading the document: %w", err)
	}
	rec.digest = h.Sum(nil)
	rep, err := s.verifier.VerifyPDF(ctx, in, size)
	if err != nil {
		return nil, fmt.Errorf("verifying the document: %w", err)
	}
	rec.verdict = string(rep.Indication)
	if len(rep.Signatures) == 0 {
		if rep.SubIndication == report.FormatFailure {
			return nil, Refuse(ErrBadRequest, "the document cannot be read as a PDF: %v", rep.Errors)
		}
		return nil, ErrNothingToExtend
	}
	for _, sg := range rep.Signatures {
		if broken(sg) {
			if !force {
				return nil, &BrokenError{Report: rep}
			}
			rec.forced = true
		}
	}
	dst := &deferredWriter{}
	v := s.validation
	v.AllowMissingRevocation = true // a foreign chain's responder may be gone: say so, do not fail
	r, err := signer.ExtendTo(ctx, in, size, dst, signer.ExtendOptions{Level: level, Validation: v,
		BeforeWrite: func(res *signer.ExtendResult) error {
			rec.missing = res.Missing
			if err := s.auditExtend(ctx, *rec, audit.OutcomeSuccess, ""); err != nil {
				return auditFailed(err)
			}
			w, err := out(res.Size, res.Missing)
			dst.w = w
			return err
		}})
	if err != nil {
		if errors.Is(err, signer.ErrNoSignature) {
			return nil, ErrNothingToExtend
		}
		return nil, err
	}
	return &ExtendOutcome{Before: rep, Result: r}, nil
}

// extendRecord is the audit record of an extension.
type extendRecord struct {
	actor, level, verdict string
	digest                []byte
	size                  int64
	force, forced         bool
	missing               []string
}

func (s *Service) auditExtend(ctx context.Context, r extendRecord, outcome, reason string) error {
	d := map[string]any{"level": r.level, "size": r.size}
	if len(r.digest) > 0 {
		d["documentDigest"], d["hash"] = hex.EncodeToString(r.digest), "SHA-256"
	}
	if r.verdict != "" {
		d["verdictBefore"] = r.verdict
	}
	if r.force {
		d["force"] = true
		d["forcedOverBrokenSignature"] = r.forced
	}
	if reason != "" {
		d["reason"] = reason
	}
	if len(r.missing) > 0 {
		d["missingRevocation"] = r.missing
	}
	if outcome != audit.OutcomeSuccess {
		d["caller"] = auth.CallerOf(ctx)
	}
	_, err := s.audit.Append(ctx, audit.Entry{Actor: r.actor, Action: ActionExtend, Object: "document", Outcome: outcome, Details: d})
	if err != nil {
		s.logger.ErrorContext(ctx, "audit append failed", "action", ActionExtend, "err", err)
	}
	return err
}

// extendProblem is the 422 answer to a document whose signatures do not
// verify: a problem with the verifier's report.
type extendProblem struct {
	problem.Details
	Report *report.Report `json:"report"`
}

// extendHTTP serves POST /api/v1/extend?level=B-LT|B-LTA[&force=true]:
// the body is the PDF, the answer the extended PDF (422 with the
// verifier's report when a signature does not verify).
func (s *Service) extendHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	actor := "unidentified-caller"
	if pr, ok := auth.FromContext(r.Context()); ok && pr.Subject != "" {
		actor = pr.Subject
	}
	q := r.URL.Query()
	lv := q.Get("level")
	if lv == "" {
		lv = "B-LTA"
	}
	level, err := signer.ParseLevel(lv)
	if err == nil && level != signer.LevelBLT && level != signer.LevelBLTA {
		err = errors.New("not an extension level")
	}
	label := "unknown" // a metric label: never the caller's text
	if err == nil {
		label = level.String()
	}
	force, ferr := strconv.ParseBool(q.Get("force"))
	if q.Get("force") == "" {
		force, ferr = false, nil
	}
	rec := extendRecord{actor: actor, level: label}
	failNow := func(err error) {
		status, msg, outcome := Classify(err)
		if aerr := s.auditExtend(r.Context(), rec, outcome, msg); aerr != nil {
			status, msg, outcome = Classify(refusalUnrecorded(err, aerr))
		}
		s.Observe("extend", label, outcome, time.Since(start))
		problem.Write(w, problem.Details{Status: status, Detail: msg, Instance: r.URL.Path})
	}
	switch {
	case err != nil:
		failNow(Refuse(ErrBadRequest, "level must be B-LT or B-LTA, got %q", lv))
		return
	case ferr != nil:
		failNow(Refuse(ErrBadRequest, "force must be true or false, got %q", q.Get("force")))
		return
	}
	in, cleanup, err := s.readPDF(w, r, nil)
	defer cleanup()
	if err != nil {
		failNow(err)
		return
	}
	started := false
	res, err := s.Extend(r.Context(), actor, level, force, in.r, in.size, func(size int64, missing []string) (io.Writer, error) {
		hdr := w.Header()
		for _, m := range missing {
			hdr.Add(WarningHeader, asciiHeader("no revocation data for "+m))
		}
		hdr["Content-Type"] = []string{"application/pdf"}
		hdr["Content-Length"] = []string{strconv.FormatInt(size, 10)}
		w.WriteHeader(http.StatusOK)
		started = true
		return w, nil
	})
	if err != nil {
		if started {
			s.logger.ErrorContext(r.Context(), "writing the extended document failed", "err", err)
			return
		}
		_, _, outcome := Classify(err)
		s.Observe("extend", label, outcome, time.Since(start))
		var be *BrokenError
		if errors.As(err, &be) {
			w.Header().Set("Content-Type", problem.ContentType)
			w.WriteHeader(http.StatusUnprocessableEntity)
			_ = json.NewEncoder(w).Encode(extendProblem{Details: problem.Details{Title: http.StatusText(http.StatusUnprocessableEntity),
				Status: http.StatusUnprocessableEntity, Detail: be.Error(), Instance: r.URL.Path}, Report: be.Report})
			return
		}
		status, msg, _ := Classify(err)
		problem.Write(w, problem.Details{Status: status, Detail: msg, Instance: r.URL.Path})
		return
	}
	for _, m := range res.Result.Missing {
		s.logger.WarnContext(r.Context(), "extension without revocation data", "missing", m)
	}
	s.Observe("extend", level.String(), audit.OutcomeSuccess, time.Since(start))
}
