package ca

import (
	"context"
	"crypto"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/thiqa/thiqa/internal/audit"
	"github.com/thiqa/thiqa/internal/auth"
	"github.com/thiqa/thiqa/internal/outage"
	"github.com/thiqa/thiqa/internal/problem"
	"github.com/thiqa/thiqa/policies"
)

// KeyGenerator creates subject keys on the service's token for remote
// signing ("keyInHSM": true). hsm/keyring implements it
// (keyring.Credentials).
type KeyGenerator interface {
	// GenerateKey creates a key suited to the profile and returns the
	// credential ID that names it and its public key.
	GenerateKey(ctx context.Context, profile string) (credentialID string, pub crypto.PublicKey, err error)
	// DeleteKey removes a key whose certificate was refused.
	DeleteKey(ctx context.Context, credentialID string) error
}

// HandlerOptions configures the CA's HTTP API.
type HandlerOptions struct {
	// Caller returns the authenticated caller's identity; authentication
	// and authorisation are done by middleware wrapped around the handler.
	// Default: the subject of the request's principal (internal/auth),
	// "unknown" without one.
	Caller func(*http.Request) string
	// KeyGenerator serves keyInHSM requests; nil refuses them.
	KeyGenerator KeyGenerator
	// Logger receives server-side errors; nil discards.
	Logger *slog.Logger
	// Trail reads a certificate's audit trail; nil answers 501.
	Trail TrailReader
	// Search narrows certificate searches; nil answers 501.
	Search Searcher
	// Issued, when set, is told of every certificate whose key was made on
	// the token (keyInHSM), after it is issued and audited and before the
	// answer is sent: the signing service registers the credential then, so
	// that its owner sees it at once (GET /api/v1/credentials?owner=self).
	// An error is logged; the certificate stays issued and the credential is
	// registered on its first use. The Registration it returns adds to the
	// answer (an activation code).
	Issued func(ctx context.Context, got *Issued) (Registration, error)
	// FirstPINActivation says that the first PIN of a citizen's signing
	// credential is set with an activation code the officer hands over
	// (signing.pinPolicy.firstPINActivation): the record of a keyInHSM
	// citizen-signing issuance says so (Request.FirstPINActivation).
	FirstPINActivation bool
}

// Registration is what HandlerOptions.Issued did with the credential of a
// certificate just issued.
type Registration struct {
	// ActivationCode, when set, is the one-time code with which the holder
	// sets the credential's first PIN; the answer shows it once
	// (IssueResponse.ActivationCode), nothing else keeps it.
	ActivationCode string
	// ActivationExpires ends the code's use.
	ActivationExpires time.Time
}

// API serves the CA's HTTP endpoints. Each endpoint is also exposed as its
// own handler so that middleware can authorise them separately.
type API struct {
	a    *Authority
	opts HandlerOptions
	// caPEM holds the CA certificates' PEM, encoded once for every answer's chain.
	caPEM map[*x509.Certificate]string
}

// NewAPI builds the CA's HTTP API.
func NewAPI(a *Authority, opts HandlerOptions) *API {
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Caller == nil {
		opts.Caller = principalSubject
	}
	caPEM := map[*x509.Certificate]string{a.root: pemCert(a.root.Raw)}
	for _, is := range a.byName {
		caPEM[is.cert] = pemCert(is.cert.Raw)
	}
	return &API{a: a, opts: opts, caPEM: caPEM}
}

// principalSubject names the authenticated caller for RequestedBy and the
// audit log: the subject of the request's principal, "unknown" without one.
func principalSubject(r *http.Request) string {
	if pr, ok := auth.FromContext(r.Context()); ok && pr.Subject != "" {
		return pr.Subject
	}
	return "unknown"
}

// Mux is where the CA mounts its routes: an *http.ServeMux, or cmd/thiqa's
// mux that also records its route table.
type Mux interface {
	Handle(pattern string, handler http.Handler)
}

// Guard wraps a handler so that it serves only callers allowed action,
// answering (and auditing) every other request itself; cmd/thiqa passes
// (*auth.Authenticator).Require.
type Guard func(action policies.Action) func(http.Handler) http.Handler

// Register mounts the CA's endpoints on mux: POST /api/v1/certificates
// (policies.ActionIssueCertificate) and GET /api/v1/certificates/{serial}
// (policies.ActionReadCertificate) behind guard, and the public
// GET /certs/{file}.
func (api *API) Register(mux Mux, guard Guard) {
	mux.Handle("POST /api/v1/certificates", guard(policies.ActionIssueCertificate)(http.HandlerFunc(api.Issue)))
	mux.Handle("GET /api/v1/certificates/{serial}", guard(policies.ActionReadCertificate)(http.HandlerFunc(api.Get)))
	mux.Handle("GET /api/v1/certificates/{serial}/audit", guard(policies.ActionReadCertificate)(http.HandlerFunc(api.Trail)))
	mux.Handle("GET /certs/{file}", http.HandlerFunc(api.CACert))
}

// NewHandler serves POST /api/v1/certificates, GET /api/v1/certificates/{serial}
// and GET /certs/{root|citizen|organisation|tsa}.crt without authentication
// (for tests and for callers that authenticate in front of it).
func NewHandler(a *Authority, opts HandlerOptions) http.Handler {
	mux := http.NewServeMux()
	NewAPI(a, opts).Register(mux, func(policies.Action) func(http.Handler) http.Handler {
		return func(h http.Handler) http.Handler { return h }
	})
	return mux
}

// maxRequestBody bounds an issuance request (a CSR and a few fields).
const maxRequestBody = 64 << 10

// IssueRequest is the JSON body of POST /api/v1/certificates.
type IssueRequest struct {
	Profile   string            `json:"profile"`
	CA        string            `json:"ca,omitempty"`
	Subject   map[string]string `json:"subject"`
	CSR       string            `json:"csr,omitempty"`
	KeyInHSM  bool              `json:"keyInHSM,omitempty"`
	RequestID string            `json:"requestID,omitempty"`
}

// IssueResponse is the JSON body of a 201 answer.
type IssueResponse struct {
	Serial       string   `json:"serial"`
	Certificate  string   `json:"certificate"`
	Chain        []string `json:"chain"`
	CredentialID string   `json:"credentialID,omitempty"`
	// ActivationCode is the one-time code with which the citizen sets the
	// first PIN of a keyInHSM citizen-signing credential, when the
	// deployment asks for one (signing.pinPolicy.firstPINActivation); shown
	// this once. ActivationCodeExpiresAt ends its use.
	ActivationCode          string     `json:"activationCode,omitempty"`
	ActivationCodeExpiresAt *time.Time `json:"activationCodeExpiresAt,omitempty"`
}

// CertificateResponse is the JSON body of GET /api/v1/certificates/{serial}.
type CertificateResponse struct {
	Serial           string     `json:"serial"`
	CA               string     `json:"ca"`
	Profile          string     `json:"profile"`
	Certificate      string     `json:"certificate"`
	Status           string     `json:"status"` // valid, revoked, expired
	NotBefore        time.Time  `json:"notBefore"`
	NotAfter         time.Time  `json:"notAfter"`
	RevokedAt        *time.Time `json:"revokedAt,omitempty"`
	RevocationReason *int       `json:"revocationReason,omitempty"`
	// CredentialID names the key on the token the certificate certifies
	// (a remote-signing credential or a mobile ID).
	CredentialID string `json:"credentialID,omitempty"`
}

func pemCert(der []byte) string {
	return string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}))
}

// Issue handles POST /api/v1/certificates.
func (api *API) Issue(w http.ResponseWriter, r *http.Request) {
	var in IssueRequest
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxRequestBody))
	dec.DisallowUnknownFields()
	malformed := func(detail string) {
		if api.record(w, r, policies.ActionIssueCertificate, "", "refused", detail) {
			problem.Write(w, problem.Details{Status: http.StatusBadRequest, Title: "Malformed request", Detail: detail, Instance: r.URL.Path})
		}
	}
	if err := dec.Decode(&in); err != nil {
		malformed("request body: " + err.Error())
		return
	}
	if dec.More() {
		malformed("trailing data after the JSON object")
		return
	}
	if in.RequestID == "" {
		in.RequestID = r.Header.Get("Idempotency-Key")
	}
	if len(in.RequestID) > 128 {
		malformed("requestID longer than 128 characters")
		return
	}
	req := Request{Profile: in.Profile, CA: in.CA, Subject: in.Subject, RequestID: in.RequestID, RequestedBy: api.opts.Caller(r)}
	if req.Subject == nil {
		req.Subject = map[string]string{}
	}
	// The refusals and failures met before the authority is asked are
	// recorded here, as the authority records its own.
	early := func(outcome string, err error) {
		if api.record(w, r, policies.ActionIssueCertificate, "profile:"+in.Profile, outcome, err.Error()) {
			api.fail(w, r, err)
		}
	}
	switch {
	case in.KeyInHSM && in.CSR != "":
		early(audit.OutcomeRefused, &RequestError{Reason: "give either csr or keyInHSM, not both"})
		return
	case in.KeyInHSM:
		if api.opts.KeyGenerator == nil {
			early(audit.OutcomeRefused, &RequestError{Reason: "keyInHSM is not available on this service"})
			return
		}
		// Check profile and subject before creating anything on the token.
		if err := api.a.CheckRequest(req); err != nil {
			_, err = api.a.Issue(r.Context(), req) // refuses at the same check, and audits the refusal
			api.fail(w, r, err)
			return
		}
		id, pub, err := api.opts.KeyGenerator.GenerateKey(r.Context(), in.Profile)
		if err != nil {
			early(audit.OutcomeFailure, fmt.Errorf("generating the key on the token: %w", err))
			return
		}
		req.PublicKey, req.KeyGeneratedByService, req.CredentialID = pub, true, id
		req.FirstPINActivation = api.opts.FirstPINActivation && in.Profile == policies.ProfileCitizenSigning
	default:
		req.CSR = []byte(in.CSR)
	}
	got, err := api.a.Issue(r.Context(), req)
	if err != nil {
		if req.CredentialID != "" {
			if derr := api.opts.KeyGenerator.DeleteKey(context.WithoutCancel(r.Context()), req.CredentialID); derr != nil {
				api.opts.Logger.Error("removing the key of a refused request", "credentialID", req.CredentialID, "err", derr)
			}
		}
		api.fail(w, r, err)
		return
	}
	var reg Registration
	if got.CredentialID != "" && api.opts.Issued != nil {
		if reg, err = api.opts.Issued(context.WithoutCancel(r.Context()), got); err != nil {
			api.opts.Logger.Warn("registering the credential of a new certificate", "credentialID", got.CredentialID, "serial", got.Serial, "err", err)
			reg = Registration{}
		}
	}
	out := api.issueResponse(got)
	if reg.ActivationCode != "" {
		exp := reg.ActivationExpires.UTC()
		out.ActivationCode, out.ActivationCodeExpiresAt = reg.ActivationCode, &exp
		w.Header().Set("Cache-Control", "no-store")
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Location", "/api/v1/certificates/"+got.Serial)
	w.WriteHeader(http.StatusCreated)
	_ = json.NewEncoder(w).Encode(out)
}

// issueResponse is the JSON answer of an issuance (or a renewal).
func (api *API) issueResponse(got *Issued) IssueResponse {
	out := IssueResponse{Serial: got.Serial, Certificate: pemCert(got.Certificate.Raw), CredentialID: got.CredentialID}
	out.Chain = make([]string, 0, len(got.Chain))
	for _, c := range got.Chain {
		p, ok := api.caPEM[c]
		if !ok {
			p = pemCert(c.Raw)
		}
		out.Chain = append(out.Chain, p)
	}
	return out
}

// pathSerial reads the {serial} of a certificate read. A malformed one is
// recorded as a refused read and answered 400.
func (api *API) pathSerial(w http.ResponseWriter, r *http.Request) (string, bool) {
	serial := strings.ToLower(r.PathValue("serial"))
	if !isHexSerial(serial) {
		if api.record(w, r, policies.ActionReadCertificate, "", "refused", "malformed serial") {
			problem.Write(w, problem.Details{Status: http.StatusBadRequest, Title: "Malformed serial", Detail: "serial must be 2 to 40 hex digits", Instance: r.URL.Path})
		}
		return "", false
	}
	return serial, true
}

// certificateAt looks up the certificate of a read. One it cannot give is
// recorded (refused when there is no such certificate, a failure
// otherwise) and answered.
func (api *API) certificateAt(w http.ResponseWriter, r *http.Request, serial string) (*CertificateRecord, bool) {
	rec, err := api.a.Certificate(r.Context(), serial)
	if err != nil {
		outcome := "refused"
		if !errors.Is(err, ErrNotFound) {
			outcome = audit.OutcomeFailure
		}
		if api.record(w, r, policies.ActionReadCertificate, serial, outcome, err.Error()) {
			api.fail(w, r, err)
		}
		return nil, false
	}
	return rec, true
}

// Get handles GET /api/v1/certificates/{serial}.
func (api *API) Get(w http.ResponseWriter, r *http.Request) {
	serial, ok := api.pathSerial(w, r)
	if !ok {
		return
	}
	rec, ok := api.certificateAt(w, r, serial)
	if !ok {
		return
	}
	// A certificate names a person or an agency: every read is recorded.
	if !api.record(w, r, policies.ActionReadCertificate, serial, "success", "") {
		return
	}
	out := CertificateResponse{Serial: rec.Serial, CA: rec.CA, Profile: rec.Profile, Certificate: pemCert(rec.DER),
		NotBefore: rec.NotBefore, NotAfter: rec.NotAfter, Status: "valid", CredentialID: rec.CredentialID}
	switch {
	case rec.Revoked:
		out.Status = "revoked"
		at, reason := rec.RevokedAt, rec.RevocationReason
		out.RevokedAt, out.RevocationReason = &at, &reason
	case api.a.now().After(rec.NotAfter):
		out.Status = "expired"
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	_ = json.NewEncoder(w).Encode(out)
}

// CACert handles GET /certs/{name}.crt: the DER CA certificate (the
// caIssuers URL of the certificates it issues).
func (api *API) CACert(w http.ResponseWriter, r *http.Request) {
	name, ok := strings.CutSuffix(r.PathValue("file"), ".crt")
	cert, found := api.a.CACertificate(name)
	if !ok || !found {
		problem.Write(w, problem.Details{Status: http.StatusNotFound, Detail: "no such CA certificate", Instance: r.URL.Path})
		return
	}
	w.Header().Set("Content-Type", "application/pkix-cert")
	w.Header().Set("Cache-Control", "public, max-age=86400")
	_, _ = w.Write(cert.Raw)
}

func isHexSerial(s string) bool {
	if len(s) < 2 || len(s) > 40 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if !(s[i] >= '0' && s[i] <= '9' || s[i] >= 'a' && s[i] <= 'f') {
			return false
		}
	}
	return true
}

// record writes the audit record of a read or of a refusal the API makes
// before the authority is asked; when it cannot, it answers 500 itself and
// returns false.
func (api *API) record(w http.ResponseWriter, r *http.Request, action policies.Action, object, outcome, reason string) bool {
	e := audit.Entry{Actor: api.opts.Caller(r), Action: string(action), Object: object, Outcome: outcome}
	if e.Actor == "" {
		e.Actor = "unknown"
	}
	var details map[string]any
	if reason != "" {
		details = map[string]any{"error": reason}
	}
	if err := appendAudit(r.Context(), api.a.audit, e, details); err != nil {
		api.opts.Logger.ErrorContext(r.Context(), "audit append failed", "action", action, "err", err)
		if outage.Is(err) {
			problem.Unavailable(w, r.URL.Path)
			return false
		}
		problem.Write(w, problem.Details{Status: http.StatusInternalServerError, Title: "Internal error", Detail: "the audit log is unavailable", Instance: r.URL.Path})
		return false
	}
	return true
}

// subjectProblems lists every field a subject error names (errors) and
// why each is refused (invalid-params), in the order validation found them.
func subjectProblems(err error) (fields []string, params []problem.InvalidParam) {
	var all policies.SubjectErrors
	if !errors.As(err, &all) {
		var se *policies.SubjectError
		if errors.As(err, &se) {
			all = policies.SubjectErrors{se}
		}
	}
	for _, se := range all {
		fields = append(fields, se.Field)
		params = append(params, problem.InvalidParam{Name: se.Field, Reason: se.Reason})
	}
	return fields, params
}

// fail maps the CA's typed errors to RFC 9457 problems.
func (api *API) fail(w http.ResponseWriter, r *http.Request, err error) {
	p := problem.Details{Instance: r.URL.Path, Detail: err.Error()}
	var se *policies.SubjectError
	var we *WeakKeyError
	var le *LintError
	var re *RequestError
	switch {
	case errors.Is(err, policies.ErrUnknownProfile):
		p.Status, p.Type, p.Title = http.StatusBadRequest, "urn:thiqa:problem:unknown-profile", "Unknown certificate profile"
	case errors.As(err, &se):
		p.Status, p.Type, p.Title = http.StatusBadRequest, "urn:thiqa:problem:bad-subject", "Invalid subject field"
		p.Errors, p.InvalidParams = subjectProblems(err)
	case errors.Is(err, ErrBadCSR):
		p.Status, p.Type, p.Title = http.StatusBadRequest, "urn:thiqa:problem:bad-csr", "Invalid certificate signing request"
	case errors.As(err, &we):
		p.Status, p.Type, p.Title = http.StatusBadRequest, "urn:thiqa:problem:bad-key", "Unacceptable public key"
	case errors.Is(err, ErrKeyBlocked):
		p.Status, p.Type, p.Title = http.StatusBadRequest, "urn:thiqa:problem:key-compromised", "Public key reported compromised"
	case errors.As(err, &re):
		p.Status, p.Type, p.Title = http.StatusBadRequest, "urn:thiqa:problem:bad-request", "Bad request"
	case errors.As(err, &le):
		p.Status, p.Type, p.Title, p.Errors = http.StatusUnprocessableEntity, "urn:thiqa:problem:lint-failed", "Certificate failed pre-issuance lints", le.Lints
	case errors.Is(err, ErrDuplicateRequest):
		p.Status, p.Type, p.Title = http.StatusConflict, "urn:thiqa:problem:duplicate-request", "Request already processed"
	case errors.Is(err, ErrKeyOtherSubject):
		p.Status, p.Type, p.Title = http.StatusConflict, "urn:thiqa:problem:key-other-subject", "Public key certified for another subject"
	case errors.Is(err, ErrNotPermitted):
		p.Status, p.Type, p.Title = http.StatusForbidden, "urn:thiqa:problem:not-yours", "Not the caller's certificate"
	case errors.Is(err, ErrAlreadyRenewed):
		p.Status, p.Type, p.Title = http.StatusConflict, "urn:thiqa:problem:already-renewed", "Certificate already renewed"
	case errors.Is(err, ErrNotRenewable):
		p.Status, p.Type, p.Title = http.StatusConflict, "urn:thiqa:problem:not-renewable", "Certificate cannot be renewed"
	case errors.Is(err, ErrCryptoPeriod):
		p.Status, p.Type, p.Title = http.StatusConflict, "urn:thiqa:problem:crypto-period-over", "The key's crypto-period is over"
	case errors.Is(err, ErrSameKey):
		p.Status, p.Type, p.Title = http.StatusBadRequest, "urn:thiqa:problem:same-key", "Re-key with the same key"
	case errors.Is(err, ErrNotFound):
		p.Status, p.Title = http.StatusNotFound, "Certificate not found"
	case errors.Is(err, ErrIssuerExpiring):
		// The service's condition, not the caller's (so not a 4xx), and not
		// transient (so not a 503, whose Retry-After says come back in
		// seconds): a 500 like any failure, which the error-ratio alerts
		// count, with its own type and a detail that says what is wrong and
		// what the operators must do.
		api.opts.Logger.ErrorContext(r.Context(), "certificate API error", "path", r.URL.Path, "err", err)
		p.Status, p.Type, p.Title = http.StatusInternalServerError, ProblemIssuerExpiring, "Issuing CA at the end of its validity"
	case errors.Is(err, ErrIssuerRevoked):
		// The service's condition, not the caller's, and not transient: a
		// 503 would carry the Retry-After of an outage (come back in
		// seconds). 409: the request conflicts with the issuing CA's state
		// until the operators roll it over; thiqa_issuing_ca_revoked and
		// its alert tell them.
		api.opts.Logger.ErrorContext(r.Context(), "certificate API error", "path", r.URL.Path, "err", err)
		p.Status, p.Type, p.Title = http.StatusConflict, ProblemIssuerRevoked, "Issuing CA revoked by the root"
	case outage.Is(err):
		api.opts.Logger.ErrorContext(r.Context(), "certificate API error", "path", r.URL.Path, "err", err)
		problem.Unavailable(w, r.URL.Path)
		return
	default:
		api.opts.Logger.ErrorContext(r.Context(), "certificate API error", "path", r.URL.Path, "err", err)
		p.Status, p.Title, p.Detail = http.StatusInternalServerError, "Internal error", "the certificate could not be issued; see the server log"
	}
	problem.Write(w, p)
}
