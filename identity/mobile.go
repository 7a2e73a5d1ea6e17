package identity

import (
	"context"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/thiqa/thiqa/internal/auth"
	"github.com/thiqa/thiqa/internal/problem"
)

// PendingSession is one login waiting for the citizen's approval, as the
// citizen's app lists it.
type PendingSession struct {
	Session string `json:"session"`
	// VerificationCode is the code the browser shows; absent under number
	// matching (Config.NumberMatching), where the citizen types it.
	VerificationCode string    `json:"verificationCode,omitempty"`
	ClientID         string    `json:"clientID"`
	ClientName       string    `json:"clientName,omitempty"`
	Expires          time.Time `json:"expires"`
	// Scope is service or credential when a signing application asks
	// (CSC API), empty for a portal's login; CredentialID and
	// NumSignatures say what a credential authorization would sign.
	Scope         string `json:"scope,omitempty"`
	CredentialID  string `json:"credentialID,omitempty"`
	NumSignatures int    `json:"numSignatures,omitempty"`
	// Shares is what approving gives the portal or application about the
	// citizen, as the browser's login page lists it (absent when its
	// client is no longer registered).
	Shares []Shared `json:"shares,omitempty"`
}

// ApproveRequest is the JSON body of POST /oidc/mobile/approve.
type ApproveRequest struct {
	Session          string `json:"session"`
	VerificationCode string `json:"verificationCode"`
	PIN              string `json:"pin"`
}

// ApproveResponse is the JSON answer to an approval.
type ApproveResponse struct {
	Status string `json:"status"` // approved
}

// auditPhone is the audit action of refusals on the phone side; it is the
// name of policies.ActionApproveLogin, so the refusals cmd/thiqa records
// for missing credentials and wrong roles read the same.
const auditPhone = "oidc.login.approve"

// phoneRefused audits a refusal on the phone side and answers 403.
func (p *Provider) phoneRefused(w http.ResponseWriter, r *http.Request, civil, object, reason string) {
	p.phoneRefusal(w, r, civil, object, problem.Details{Status: http.StatusForbidden, Title: "Forbidden", Detail: reason})
}

// phoneRefusal audits a refusal on the phone side (the reason is the
// answer's detail, or its title) and answers it; when the record cannot be
// written the answer is 503 and says so.
func (p *Provider) phoneRefusal(w http.ResponseWriter, r *http.Request, civil, object string, d problem.Details) {
	actor := "unauthenticated"
	if civil != "" {
		actor = "citizen:" + civil
	}
	reason := d.Detail
	if reason == "" {
		reason = d.Title
	}
	if err := p.audit(r.Context(), actor, auditPhone, object, "refused", map[string]any{
		"status": d.Status, "reason": reason, "endpoint": r.URL.Path, "remote": r.RemoteAddr,
	}); err != nil {
		problem.Error(w, http.StatusServiceUnavailable, "temporarily unable to record the refusal")
		return
	}
	d.Instance = r.URL.Path
	problem.Write(w, d)
}

// caller returns the civil number of the citizen the phone side's
// authentication let through. Without one (a misconfigured PhoneAuth) the
// request is refused: the phone side never trusts a civil number the
// request names.
func (p *Provider) caller(w http.ResponseWriter, r *http.Request) (string, bool) {
	civil, ok := p.cfg.Caller(r)
	if !ok || !validCivil(civil) {
		p.phoneRefused(w, r, "", r.URL.Path, "the caller is not an authenticated citizen")
		return "", false
	}
	return civil, true
}

func validCivil(s string) bool {
	return len(s) >= 6 && len(s) <= 12 && strings.Trim(s, "0123456789") == ""
}

// mobileList lets the citizen's app poll for the logins waiting for its
// approval: GET /oidc/mobile/sessions. The citizen is the authenticated
// caller; a civil_number query parameter (older apps send one) must name
// that same citizen.
func (p *Provider) mobileList(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	civil, ok := p.caller(w, r)
	if !ok {
		return
	}
	if q := r.URL.Query(); q.Has("civil_number") && q.Get("civil_number") != civil {
		p.phoneRefused(w, r, civil, r.URL.Path, "civil_number names another citizen than the caller")
		return
	}
	ls, err := p.cfg.Store.PendingLogins(ctx, civil, p.now())
	if err != nil {
		p.log.ErrorContext(ctx, "listing pending logins", "err", err)
		problem.Error(w, http.StatusServiceUnavailable, "temporarily unable to list logins")
		return
	}
	out := []PendingSession{}
	for _, l := range ls {
		ps := PendingSession{Session: l.ID, VerificationCode: l.VerificationCode, ClientID: l.Request.ClientID, Expires: l.Expires}
		if p.cfg.NumberMatching {
			// The citizen must type the code of the browser in front of
			// them: the phone never shows it.
			ps.VerificationCode = ""
		}
		if l.Request.Kind == KindCSC {
			ps.Scope = l.Request.Scope
			if cr := l.Request.Credential; cr != nil {
				ps.CredentialID, ps.NumSignatures = cr.CredentialID, cr.NumSignatures
			}
		}
		if c, err := p.cfg.Store.Client(ctx, l.Request.ClientID); err == nil {
			ps.ClientName = c.Name
			ps.Shares = cscShares()
			if l.Request.Kind != KindCSC {
				ps.Shares = sharedClaims(c, l.Request.Scope)
			}
		}
		out = append(out, ps)
	}
	w.Header().Set("Cache-Control", "no-store")
	writeJSON(w, http.StatusOK, out)
}

// ProblemWrongCode is the problem type of an approval refused (403)
// because its verification code is not the login's: under number
// matching the login is cancelled, and the phone says so.
const ProblemWrongCode = "urn:thiqa:problem:wrong-verification-code"

// mobileApprove is the citizen's approval from the phone: session,
// verification code and PIN, sent with the citizen's own credentials (the
// session must be one of the caller's). The provider then has the citizen's key on the
// token sign a fresh challenge and checks it against the certificate, whose
// status it asks of the CA at that moment.
func (p *Provider) mobileApprove(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	start := time.Now()
	defer func() { p.m.duration.WithLabelValues("approve").Observe(time.Since(start).Seconds()) }()
	civil, ok := p.caller(w, r)
	if !ok {
		return
	}
	var in ApproveRequest
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxFormBytes))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&in); err != nil || dec.More() {
		p.phoneRefusal(w, r, civil, r.URL.Path, problem.Details{Status: http.StatusBadRequest, Title: "Malformed request", Detail: "want a JSON object with session, verificationCode and pin"})
		return
	}
	if in.Session == "" || len(in.Session) > 64 || in.PIN == "" || len(in.PIN) > 64 {
		p.phoneRefusal(w, r, civil, r.URL.Path, problem.Details{Status: http.StatusBadRequest, Title: "Malformed request", Detail: "session and pin are required"})
		return
	}
	if p.cfg.NumberMatching {
		in.VerificationCode = asciiDigits(strings.TrimSpace(in.VerificationCode))
		if in.VerificationCode == "" || len(in.VerificationCode) > 64 || strings.Trim(in.VerificationCode, "0123456789") != "" {
			// Not a guess (none, or not digits: a slip of the keyboard):
			// the login stays pending.
			p.phoneRefusal(w, r, civil, r.URL.Path, problem.Details{Status: http.StatusBadRequest, Title: "Malformed request",
				Detail: "verificationCode is required, in digits: type the code the browser where you are logging in shows"})
			return
		}
	}
	l, err := p.cfg.Store.Login(ctx, in.Session)
	if errors.Is(err, ErrNotFound) {
		p.phoneRefusal(w, r, civil, in.Session, problem.Details{Status: http.StatusNotFound, Title: "Unknown session"})
		return
	}
	if err != nil {
		p.log.ErrorContext(ctx, "reading login", "err", err)
		problem.Error(w, http.StatusServiceUnavailable, "temporarily unable to read the login")
		return
	}
	if subtle.ConstantTimeCompare([]byte(l.CivilNumber), []byte(civil)) != 1 {
		// Another citizen's login: refused without touching it, so that
		// nobody can cancel a login that is not theirs.
		p.phoneRefused(w, r, civil, l.ID, "the session belongs to another citizen")
		return
	}
	if l.State != LoginPending {
		p.phoneRefusal(w, r, civil, l.ID, problem.Details{Status: http.StatusConflict, Title: "Session not pending", Detail: "this login was already " + string(l.State)})
		return
	}
	citizen, err := p.approve(ctx, l, in)
	if err != nil {
		if aerr := p.denyLogin(ctx, l, err); aerr != nil {
			// No refusal leaves without its record.
			problem.Error(w, http.StatusServiceUnavailable, "temporarily unable to record the refusal")
			return
		}
		status, title := http.StatusForbidden, "Login refused"
		var rf *refusal
		if !errors.As(err, &rf) {
			status, title = http.StatusServiceUnavailable, "Login failed"
		}
		detail, ptype := "the login was refused", ""
		switch {
		case errors.Is(err, ErrPINLocked):
			status, title = http.StatusLocked, "PIN locked"
			detail = "the PIN is locked after too many wrong tries: a registration officer can reset it (POST /api/v1/credentials/{id}/pin/reset)"
		case errors.Is(err, ErrWrongPIN):
			detail = "wrong PIN"
		case errors.Is(err, ErrWrongCode):
			detail, ptype = rf.reason, ProblemWrongCode
		case errors.As(err, &rf):
			detail = rf.reason
		}
		problem.Write(w, problem.Details{Type: ptype, Status: status, Title: title, Detail: detail, Instance: r.URL.Path})
		return
	}
	l.State, l.Citizen, l.AuthTime = LoginApproved, &citizen, p.now().UTC()
	if err := p.cfg.Store.UpdateLogin(ctx, l, LoginPending); err != nil {
		p.phoneRefusal(w, r, civil, l.ID, problem.Details{Status: http.StatusConflict, Title: "Session not pending", Detail: "the login changed state meanwhile"})
		return
	}
	acr, _ := p.assurance(citizen, MethodMobile)
	if err := p.audit(ctx, "citizen:"+citizen.CivilNumber, "oidc.login", l.Request.ClientID, "success", map[string]any{
		"method": MethodMobile, "certSerial": citizen.CertSerial, "session": l.ID, "acr": acr, "remote": r.RemoteAddr,
	}); err != nil {
		// Without its audit record the login must not complete.
		l.State, l.Reason = LoginDenied, "audit record could not be written"
		_ = p.cfg.Store.UpdateLogin(context.WithoutCancel(ctx), l, LoginApproved)
		p.m.logins.WithLabelValues(MethodMobile, "failure").Inc()
		problem.Error(w, http.StatusServiceUnavailable, "temporarily unable to record the login")
		return
	}
	p.m.logins.WithLabelValues(MethodMobile, "success").Inc()
	w.Header().Set("Cache-Control", "no-store")
	writeJSON(w, http.StatusOK, ApproveResponse{Status: string(LoginApproved)})
}

// approve runs the checks of a remote login in order: session not expired,
// verification code, the citizen's credential, PIN, certificate status at
// this moment, and proof of possession of the key.
func (p *Provider) approve(ctx context.Context, l *Login, in ApproveRequest) (Citizen, error) {
	if p.now().After(l.Expires) {
		return Citizen{}, refuse("login session expired before approval")
	}
	if subtle.ConstantTimeCompare([]byte(in.VerificationCode), []byte(l.VerificationCode)) != 1 {
		if p.cfg.NumberMatching {
			// One try per login (the caller denies it): with four digits a
			// guess succeeds once in 10,000 logins started.
			return Citizen{}, &matchedRefusal{refusal{reason: "wrong verification code: this login is cancelled; start it again in the browser"}, ErrWrongCode}
		}
		return Citizen{}, &matchedRefusal{refusal{reason: "wrong verification code"}, ErrWrongCode}
	}
	if p.cfg.Directory == nil || p.cfg.Keys == nil || p.cfg.PINs == nil {
		return Citizen{}, refuse("mobile ID is not configured")
	}
	cred, err := p.remoteCredential(ctx, l.CivilNumber)
	if errors.Is(err, ErrNotFound) {
		return Citizen{}, refuse("no mobile ID credential for this civil number")
	}
	if err != nil {
		return Citizen{}, fmt.Errorf("finding the citizen's credential: %w", err)
	}
	switch err := p.cfg.PINs.CheckPIN(ctx, cred.ID, l.CivilNumber, in.PIN); {
	case errors.Is(err, ErrPINLocked):
		return Citizen{}, &matchedRefusal{refusal{reason: "PIN locked"}, ErrPINLocked}
	case errors.Is(err, ErrWrongPIN):
		return Citizen{}, &matchedRefusal{refusal{reason: "wrong PIN"}, ErrWrongPIN}
	case err != nil:
		return Citizen{}, fmt.Errorf("checking the PIN: %w", err)
	}
	citizen, err := p.checkCertificate(ctx, cred.Certificate)
	if err != nil {
		return Citizen{}, err
	}
	if citizen.CivilNumber != l.CivilNumber {
		return Citizen{}, refuse("credential certificate names another citizen")
	}
	key, err := p.cfg.Keys.Key(ctx, cred.ID)
	if err != nil {
		return Citizen{}, fmt.Errorf("finding the citizen's key: %w", err)
	}
	if err := proveKey(key, cred.Certificate, l.ID); err != nil {
		return Citizen{}, err
	}
	return citizen, nil
}

// remoteCredential returns the citizen's newest enrolled mobile ID whose
// certificate names the civil number of the deployment's country, or
// ErrNotFound. Another country's holder of the same number may have one
// too (it is stored by the number alone): theirs is skipped, so it neither
// logs this citizen in nor shadows their own, and their PIN is never tried.
func (p *Provider) remoteCredential(ctx context.Context, civil string) (*RemoteCredential, error) {
	creds, err := p.cfg.Directory.RemoteCredentials(ctx, civil)
	if err != nil {
		return nil, err
	}
	for _, c := range creds {
		if c != nil && c.Certificate != nil && (p.cfg.Country == "" || auth.CivilNumberIn(p.cfg.Country, c.Certificate.Subject.SerialNumber) != "") {
			return c, nil
		}
	}
	return nil, fmt.Errorf("mobile ID of civil number %s: none of this deployment's country %s: %w", civil, p.cfg.Country, ErrNotFound)
}

// matchedRefusal is a refusal that also matches a sentinel (ErrWrongPIN,
// ErrPINLocked, ErrWrongCode).
type matchedRefusal struct {
	refusal
	sentinel error
}

func (e *matchedRefusal) Unwrap() []error { return []error{&e.refusal, e.sentinel} }

// denyLogin ends a pending login as refused (or failed) and records it;
// it returns the error of the audit append (the login stays denied).
func (p *Provider) denyLogin(ctx context.Context, l *Login, cause error) error {
	l.State, l.Reason = LoginDenied, cause.Error()
	if err := p.cfg.Store.UpdateLogin(context.WithoutCancel(ctx), l, LoginPending); err != nil && !errors.Is(err, ErrConflict) {
		p.log.ErrorContext(ctx, "recording a denied login", "err", err)
	}
	return p.loginFailed(ctx, MethodMobile, l.Request.ClientID, l.CivilNumber, map[string]any{"session": l.ID}, cause)
}

// asciiDigits returns s with Arabic-Indic and Eastern Arabic-Indic digits
// (what an Arabic keyboard types) replaced by ASCII ones, the verification
// code's digits.
func asciiDigits(s string) string {
	return strings.Map(func(r rune) rune {
		switch {
		case r >= '\u0660' && r <= '\u0669':
			return '0' + r - '\u0660'
		case r >= '\u06F0' && r <= '\u06F9':
			return '0' + r - '\u06F0'
		}
		return r
	}, s)
}
