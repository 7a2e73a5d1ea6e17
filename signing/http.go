package signing

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/thiqa/thiqa/internal/audit"
	"github.com/thiqa/thiqa/internal/auth"
	"github.com/thiqa/thiqa/internal/outage"
	"github.com/thiqa/thiqa/internal/pin"
	"github.com/thiqa/thiqa/internal/problem"
	"github.com/thiqa/thiqa/policies"
	"github.com/thiqa/thiqa/signer"
	"github.com/thiqa/thiqa/signer/jades"
)

// PINHeader carries the citizen's signing PIN on POST /api/v1/sign. The PIN
// is checked after the document is prepared and before the key is used, so
// it authorises exactly this document's digest, once.
const PINHeader = "X-Thiqa-PIN"

// DigestHeader names the hex ByteRange digest of a signed or sealed PDF.
const DigestHeader = "X-Thiqa-Document-Digest"

// SADHeader carries the SAD on POST /api/v1/sign/complete.
const SADHeader = "X-Thiqa-SAD"

// BatchResult is one document's outcome in a batch seal answer.
type BatchResult struct {
	// Name is the multipart part's file name (or form name).
	Name string `json:"name"`
	// Status is the HTTP status this document alone would have had.
	Status int `json:"status"`
	// DocumentDigest is the hex ByteRange digest of the sealed document.
	DocumentDigest string `json:"documentDigest,omitempty"`
	// Document is the sealed PDF, base64.
	Document string `json:"document,omitempty"`
	// Problem explains a refusal or failure.
	Problem *problem.Details `json:"problem,omitempty"`
	// Warnings say what a visible seal could not show as asked.
	Warnings []string `json:"warnings,omitempty"`
}

// BatchResponse is the answer of POST /api/v1/seal/batch.
type BatchResponse struct {
	// Level is the PAdES level of every sealed document.
	Level string `json:"level"`
	// Results lists each document's outcome, in the order of the parts.
	Results []BatchResult `json:"results"`
}

// PINRequest is the body of POST /api/v1/credentials/{id}/pin.
type PINRequest struct {
	// PIN is the new signing PIN.
	PIN string `json:"pin"`
}

// Guard wraps a handler with the authentication of the caller and the
// authorisation of action; cmd/thiqa passes auth.Authenticator.Require.
type Guard func(action policies.Action) func(http.Handler) http.Handler

// Mux is where the service mounts its routes: an *http.ServeMux, or
// cmd/thiqa's mux that also records its route table.
type Mux interface {
	Handle(pattern string, handler http.Handler)
}

// Register mounts the service's endpoints on mux, each behind guard:
// POST /api/v1/seal, /api/v1/seal/batch and /api/v1/seal/jades
// (policies.ActionSeal), POST /api/v1/sign, /api/v1/sign/prepare and
// /api/v1/sign/complete (policies.ActionSign),
// /api/v1/credentials/{id}/pin (policies.ActionManagePIN), and POST
// /api/v1/extend (policies.ActionExtend).
func (s *Service) Register(mux Mux, guard Guard) {
	seal := guard(policies.ActionSeal)
	sign := guard(policies.ActionSign)
	mux.Handle("POST /api/v1/seal", seal(http.HandlerFunc(s.seal)))
	mux.Handle("POST /api/v1/seal/batch", seal(http.HandlerFunc(s.sealBatch)))
	mux.Handle("POST /api/v1/seal/jades", seal(http.HandlerFunc(s.sealJAdES)))
	mux.Handle("POST /api/v1/sign", sign(http.HandlerFunc(s.sign)))
	mux.Handle("POST /api/v1/sign/prepare", sign(http.HandlerFunc(s.signPrepare)))
	mux.Handle("POST /api/v1/sign/complete", sign(http.HandlerFunc(s.signComplete)))
	mux.Handle("POST /api/v1/credentials/{id}/pin", guard(policies.ActionManagePIN)(http.HandlerFunc(s.setPIN)))
	mux.Handle("POST /api/v1/extend", guard(policies.ActionExtend)(http.HandlerFunc(s.extendHTTP)))
	s.registerPINLifeCycle(mux, guard)
	s.registerCredentialList(mux, guard)
}

// Classify maps an error of the service to what the caller is told: the
// HTTP status, the detail (never the internal cause of a failure) and the
// audit outcome (refused or failure). It is the one mapping of the
// service's errors; signing/csc builds the CSC error bodies on it.
func Classify(err error) (status int, detail, outcome string) {
	var rf *Refusal
	var we *pin.WrongError
	var wc *pin.WrongCodeError
	switch {
	case outage.Is(err):
		// The database could not be reached (its records included):
		// whatever else the error says, a retry may succeed.
		return http.StatusServiceUnavailable, problem.UnavailableDetail, audit.OutcomeFailure
	case errors.As(err, &rf):
		return refusalStatus(rf.Kind), rf.Reason, audit.OutcomeRefused
	case errors.Is(err, ErrCredentialRefused):
		return http.StatusForbidden, err.Error(), audit.OutcomeRefused
	case errors.Is(err, ErrSADInvalid):
		return http.StatusForbidden, ErrSADInvalid.Error(), audit.OutcomeRefused
	case errors.Is(err, ErrSADMismatch):
		return http.StatusForbidden, "the SAD does not authorise this document: it differs from the one prepared, or was prepared with another signingTime or placeholder", audit.OutcomeRefused
	case errors.Is(err, pin.ErrLocked):
		return http.StatusLocked, "the signing PIN is locked after too many wrong tries; a registration officer can reset it (POST /api/v1/credentials/{id}/pin/reset)", audit.OutcomeRefused
	case errors.As(err, &we):
		return http.StatusForbidden, we.Error(), audit.OutcomeRefused
	case errors.Is(err, pin.ErrNotSet):
		return http.StatusForbidden, "no signing PIN is set for this credential: set it first (POST /api/v1/credentials/{id}/pin, or with an activation code from a registration officer: POST /api/v1/credentials/{id}/pin/activate)", audit.OutcomeRefused
	case errors.Is(err, pin.ErrAlreadySet):
		// The caller's request is refused (the PIN stays as it is), as
		// every other refusal: not a failure of the service.
		return http.StatusConflict, "the signing PIN of this credential is already set, or awaits its activation code (POST /api/v1/credentials/{id}/pin/activate)", audit.OutcomeRefused
	case errors.As(err, &wc):
		return http.StatusForbidden, wc.Error(), audit.OutcomeRefused
	case errors.Is(err, pin.ErrActivationExpired):
		return http.StatusGone, "the activation code expired: a registration officer can issue a new one (POST /api/v1/credentials/{id}/pin/reset)", audit.OutcomeRefused
	case errors.Is(err, pin.ErrNoActivation):
		return http.StatusConflict, "no activation code is pending for this credential: it was used, replaced or voided, or none was issued", audit.OutcomeRefused
	case errors.Is(err, pin.ErrChanged):
		return http.StatusConflict, "the PIN was changed or reset meanwhile; nothing was changed by this request", audit.OutcomeRefused
	case errors.Is(err, pin.ErrPolicy):
		return http.StatusBadRequest, err.Error(), audit.OutcomeRefused
	case errors.Is(err, ErrBroken):
		return http.StatusUnprocessableEntity, err.Error(), audit.OutcomeRefused
	case errors.Is(err, ErrNothingToExtend):
		return http.StatusUnprocessableEntity, "the document has no signature or time-stamp to extend; nothing was added", audit.OutcomeRefused
	case errors.Is(err, signer.ErrCertificationForbids):
		return http.StatusConflict, "the document's certification signature (DocMDP P=1) forbids any change, a signature included; nothing was signed", audit.OutcomeRefused
	case errors.Is(err, signer.ErrAlreadySigned):
		return http.StatusConflict, "the document is already signed: a certification signature must be its first signature; nothing was signed", audit.OutcomeRefused
	case errors.Is(err, signer.ErrNotPDF), errors.Is(err, signer.ErrEncrypted), errors.Is(err, signer.ErrMalformed), errors.Is(err, signer.ErrOptions):
		return http.StatusBadRequest, err.Error(), audit.OutcomeRefused
	case errors.Is(err, jades.ErrOptions):
		return http.StatusBadRequest, err.Error(), audit.OutcomeRefused
	case errors.Is(err, signer.ErrTimestamp), errors.Is(err, jades.ErrTimestamp):
		if timedOut(err) {
			return http.StatusGatewayTimeout, "the time-stamp authority did not answer in time; nothing was signed", audit.OutcomeFailure
		}
		return http.StatusBadGateway, "the time-stamp authority failed; nothing was signed: " + err.Error(), audit.OutcomeFailure
	case errors.Is(err, signer.ErrRevocation):
		return http.StatusBadGateway, "revocation data unavailable; nothing was signed: " + err.Error(), audit.OutcomeFailure
	case timedOut(err):
		return http.StatusGatewayTimeout, "timed out; nothing was signed", audit.OutcomeFailure
	}
	return http.StatusInternalServerError, "signing failed", audit.OutcomeFailure
}

// refusalStatus is the HTTP status of a refusal of kind.
func refusalStatus(kind error) int {
	switch kind {
	case ErrUnsupportedMediaType:
		return http.StatusUnsupportedMediaType
	case ErrTooLarge:
		return http.StatusRequestEntityTooLarge
	case ErrActivationRequired:
		return http.StatusUnauthorized
	case ErrFirstPINActivation:
		return http.StatusConflict
	case ErrNoIdentity, ErrCredentialRefused, ErrCertificateNotValid, ErrCertificateRevoked, ErrSADInvalid, ErrSADMismatch, ErrOutOfScope:
		return http.StatusForbidden
	}
	return http.StatusBadRequest
}

// timedOut reports whether err is a deadline that passed: the caller's, a
// call's own timeout, or a network time-out.
func timedOut(err error) bool {
	var ne net.Error
	return errors.Is(err, context.DeadlineExceeded) || (errors.As(err, &ne) && ne.Timeout())
}

// fail answers err as a problem after auditing the refusal or failure;
// when the record cannot be written, the answer is a 500 (ErrAudit), or a
// 503 when the database cannot be reached.
func (s *Service) fail(w http.ResponseWriter, r *http.Request, rec signRecord, op string, start time.Time, err error) {
	status, msg, outcome := Classify(err)
	if status >= 500 {
		s.logger.WarnContext(r.Context(), "signing failed", "action", rec.action, "credential", rec.credential, "err", err)
	}
	if aerr := s.auditSign(r.Context(), rec, outcome, msg); aerr != nil && !errors.Is(err, ErrAudit) {
		// No answer goes out without its record: an unrecorded refusal
		// is a failure of the service.
		status, msg, outcome = Classify(auditFailed(aerr))
	}
	if op != "" {
		s.Observe(op, rec.level, outcome, time.Since(start))
	}
	problem.Write(w, problem.Details{Status: status, Detail: msg, Instance: r.URL.Path, Type: problemTypeOf(status, err)})
}

// levelAndCredential reads the level and credential query parameters.
func levelAndCredential(q url.Values) (signer.Level, string, error) {
	lv := q.Get("level")
	if lv == "" {
		lv = "B-B"
	}
	level, err := signer.ParseLevel(lv)
	if err != nil {
		return 0, "", Refuse(ErrBadRequest, "level must be B-B, B-T, B-LT or B-LTA, got %q", lv)
	}
	cred := q.Get("credential")
	if cred == "" {
		return 0, "", Refuse(ErrBadRequest, "the credential query parameter is required")
	}
	return level, cred, nil
}

// agencyOf names the authenticated agency ("" for any other caller).
func agencyOf(r *http.Request) string {
	if pr, ok := auth.FromContext(r.Context()); ok {
		return pr.OrganizationIdentifier
	}
	return ""
}

// CitizenOf names the authenticated citizen by their civil number ("" for
// any other caller).
func CitizenOf(r *http.Request) string {
	if pr, ok := auth.FromContext(r.Context()); ok {
		return pr.CivilNumber
	}
	return ""
}

// seal serves POST /api/v1/seal?level=L&credential=ID: the body is the PDF,
// the answer the sealed PDF (streamed), with the ByteRange digest in
// X-Thiqa-Document-Digest.
func (s *Service) seal(w http.ResponseWriter, r *http.Request) {
	s.signDocument(w, r, ActionSeal, "seal", OwnerAgency, agencyOf(r), nil, nil)
}

// sign serves POST /api/v1/sign?level=L&credential=ID for citizens: the PIN
// in X-Thiqa-PIN is checked against the credential's PIN once the document
// digest is known and before the key is used (sole control: one PIN entry,
// one document digest, one signature).
func (s *Service) sign(w http.ResponseWriter, r *http.Request) {
	pinValue := r.Header.Get(PINHeader)
	r.Header.Del(PINHeader)
	actor := CitizenOf(r)
	if err := RefuseCredentialScope(r); err != nil {
		s.fail(w, r, signRecord{action: ActionSign, actor: actor, credential: r.URL.Query().Get("credential"), level: "unknown"}, "sign", time.Now(), err)
		return
	}
	s.signDocument(w, r, ActionSign, "sign", OwnerCitizen, actor, func(ctx context.Context, credID string, digest, _ []byte) error {
		if pinValue == "" {
			return Refuse(ErrActivationRequired, "the signing PIN is required in the %s header", PINHeader)
		}
		// signDocument found the credential to be the caller's: the
		// record of a lock names them as its owner.
		err := s.checkPIN(ctx, &pinTarget{id: credID, kind: KindSigning, owner: actor, pins: s.pins}, actor, pinValue)
		outcome, reason := audit.OutcomeSuccess, ""
		details := map[string]any{"documentDigest": hex.EncodeToString(digest), "method": "pin"}
		if err != nil {
			_, reason, outcome = Classify(err)
			details["caller"] = auth.CallerOf(ctx)
		}
		details["reason"] = reason
		if _, aerr := s.audit.Append(ctx, audit.Entry{Actor: actor, Action: ActionAuthorize, Object: credID, Outcome: outcome,
			Details: details}); aerr != nil && err == nil {
			return auditFailed(aerr)
		}
		return err
	}, nil)
}

// callerCredential opens a request on one of the caller's own
// credentials: rec.actor (the caller's identity of kind, agency or citizen)
// must be set, the level and the credential come from the query, and the
// credential must be the caller's. It fills rec's credential and level. On
// a refusal it has answered, audited and counted it, and ok is false.
func (s *Service) callerCredential(w http.ResponseWriter, r *http.Request, q url.Values, rec *signRecord, op, kind string, start time.Time) (level signer.Level, cred *Credential, ok bool) {
	owner := rec.actor
	if owner == "" {
		rec.actor = "unidentified-caller"
		s.fail(w, r, *rec, op, start, Refuse(ErrNoIdentity, "the caller has no %s identity", kind))
		return 0, nil, false
	}
	level, credID, err := levelAndCredential(q)
	rec.credential = credID
	if err != nil {
		s.fail(w, r, *rec, op, start, err)
		return 0, nil, false
	}
	rec.level = level.String()
	cred, err = s.Credential(r.Context(), credID, kind, owner)
	if err != nil {
		s.fail(w, r, *rec, op, start, err)
		return 0, nil, false
	}
	return level, cred, true
}

// signDocument signs (or seals) the PDF of the request with one of the
// caller's credentials and streams the result: the common path of seal,
// sign and sign/complete. authorize, when set, runs before the key is used;
// tune adjusts the signer's options.
func (s *Service) signDocument(w http.ResponseWriter, r *http.Request, action, op, kind, owner string,
	authorize func(ctx context.Context, credID string, digest, dtbs []byte) error, tune func(*signer.Options)) {
	start := time.Now()
	rec := signRecord{action: action, actor: owner, level: "unknown"}
	q := r.URL.Query()
	level, cred, ok := s.callerCredential(w, r, q, &rec, op, kind, start)
	if !ok {
		return
	}
	credID := rec.credential
	doc, err := documentOptions(q)
	if err != nil {
		s.fail(w, r, rec, op, start, err)
		return
	}
	in, cleanup, err := s.readPDF(w, r, doc)
	defer cleanup()
	if err != nil {
		s.fail(w, r, rec, op, start, err)
		return
	}
	rec.size = in.size
	var az func(ctx context.Context, digest, dtbs []byte) error
	if authorize != nil {
		az = func(ctx context.Context, digest, dtbs []byte) error { return authorize(ctx, credID, digest, dtbs) }
	}
	res, err := s.signPDF(r.Context(), rec, cred, level, in, doc, func(digest []byte, size int64) (io.Writer, error) {
		// With its length known the answer goes out unchunked, the
		// document in one write.
		hdr := w.Header()
		hdr["Content-Type"] = []string{"application/pdf"}
		hdr["Content-Length"] = []string{strconv.FormatInt(size, 10)}
		hdr[DigestHeader] = []string{hex.EncodeToString(digest)}
		for _, wn := range doc.Warnings() {
			hdr.Add(WarningHeader, asciiHeader(wn))
		}
		w.WriteHeader(http.StatusOK)
		return w, nil
	}, az, tune)
	if err != nil {
		if errors.Is(err, ErrAudit) || w.Header().Get(DigestHeader) == "" {
			s.fail(w, r, rec, op, start, err)
			return
		}
		// The response had started: the client sees a truncated body.
		s.logger.ErrorContext(r.Context(), "writing the signed document failed", "credential", credID, "err", err)
		return
	}
	s.Observe(op, res.Level.String(), audit.OutcomeSuccess, time.Since(start))
}

// setPIN serves POST /api/v1/credentials/{id}/pin: the citizen owning the
// credential sets its signing PIN, once (409 when already set). With
// signing.pinPolicy.firstPINActivation a credential without a PIN is
// refused too (409, firstPINByCode): the first PIN needs the activation
// code (POST /api/v1/credentials/{id}/pin/activate).
func (s *Service) setPIN(w http.ResponseWriter, r *http.Request) {
	owner := CitizenOf(r)
	id := r.PathValue("id")
	rec := signRecord{action: ActionPINSet, actor: owner, credential: id, level: "none"}
	if _, err := s.Credential(r.Context(), id, OwnerCitizen, owner); err != nil {
		s.fail(w, r, rec, "", time.Time{}, err)
		return
	}
	if err := s.firstPINByCode(r.Context(), id); err != nil {
		s.fail(w, r, rec, "", time.Time{}, err)
		return
	}
	var req PINRequest
	if err := DecodeJSON(w, r, &req); err != nil {
		s.fail(w, r, rec, "", time.Time{}, err)
		return
	}
	// The PIN is stored with its success record, in one transaction: no
	// PIN set without its record.
	seal, err := s.audit.Prepare(audit.Entry{Actor: rec.actor, Action: rec.action, Object: id, Outcome: audit.OutcomeSuccess,
		Details: signDetails{Credential: id, Level: rec.level}})
	if err != nil {
		s.fail(w, r, rec, "", time.Time{}, auditFailed(err))
		return
	}
	if err := s.pins.SetRecorded(r.Context(), id, req.PIN, seal); err != nil {
		s.fail(w, r, rec, "", time.Time{}, err)
		return
	}
	WriteJSON(w, http.StatusCreated, map[string]string{"credentialID": id, "pin": "set"})
}

// DecodeJSON decodes a small JSON body (unknown members are ignored, as the
// CSC API asks of servers); a refusal says what was wrong.
func DecodeJSON(w http.ResponseWriter, r *http.Request, v any) error {
	if mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type")); err != nil || mt != "application/json" {
		return Refuse(ErrUnsupportedMediaType, "the body must be application/json")
	}
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, 1<<20))
	if err := dec.Decode(v); err != nil {
		return Refuse(ErrBadRequest, "invalid JSON body: %v", err)
	}
	return nil
}

// WriteJSON sends v as JSON with the given status.
func WriteJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// asciiHeader makes s a header value: other characters than printable
// ASCII become \uXXXX.
func asciiHeader(s string) string {
	var b []byte
	for _, r := range s {
		if r >= 0x20 && r < 0x7f {
			b = append(b, byte(r))
			continue
		}
		b = fmt.Appendf(b, "\\u%04X", r)
	}
	return string(b)
}
