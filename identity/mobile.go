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

	"github.com/thiqa/thiqa/internal/problem"
)

// PendingSession is one login waiting for the citizen's approval, as the
// citizen's app lists it.
type PendingSession struct {
	Session          string    `json:"session"`
	VerificationCode string    `json:"verificationCode"`
	ClientID         string    `json:"clientID"`
	ClientName       string    `json:"clientName,omitempty"`
	Expires          time.Time `json:"expires"`
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

// mobileList lets the citizen's app poll for logins waiting for approval:
// GET /oidc/mobile/sessions?civil_number=N.
func (p *Provider) mobileList(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	civil := r.URL.Query().Get("civil_number")
	if len(civil) < 6 || len(civil) > 12 || strings.Trim(civil, "0123456789") != "" {
		problem.Write(w, problem.Details{Status: http.StatusBadRequest, Title: "Malformed request", Detail: "civil_number must be 6 to 12 digits", Instance: r.URL.Path})
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
		if c, err := p.cfg.Store.Client(ctx, l.Request.ClientID); err == nil {
			ps.ClientName = c.Name
		}
		out = append(out, ps)
	}
	w.Header().Set("Cache-Control", "no-store")
	writeJSON(w, http.StatusOK, out)
}

// mobileApprove is the citizen's approval from the phone: session,
// verification code and PIN. The provider then has the citizen's key on the
// token sign a fresh challenge and checks it against the certificate, whose
// status it asks of the CA at that moment.
func (p *Provider) mobileApprove(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	start := time.Now()
	defer func() { p.m.duration.WithLabelValues("approve").Observe(time.Since(start).Seconds()) }()
	var in ApproveRequest
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxFormBytes))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&in); err != nil || dec.More() {
		problem.Write(w, problem.Details{Status: http.StatusBadRequest, Title: "Malformed request", Detail: "want a JSON object with session, verificationCode and pin", Instance: r.URL.Path})
		return
	}
	if in.Session == "" || len(in.Session) > 64 || in.PIN == "" || len(in.PIN) > 64 {
		problem.Write(w, problem.Details{Status: http.StatusBadRequest, Title: "Malformed request", Detail: "session and pin are required", Instance: r.URL.Path})
		return
	}
	l, err := p.cfg.Store.Login(ctx, in.Session)
	if errors.Is(err, ErrNotFound) {
		problem.Write(w, problem.Details{Status: http.StatusNotFound, Title: "Unknown session", Instance: r.URL.Path})
		return
	}
	if err != nil {
		p.log.ErrorContext(ctx, "reading login", "err", err)
		problem.Error(w, http.StatusServiceUnavailable, "temporarily unable to read the login")
		return
	}
	if l.State != LoginPending {
		problem.Write(w, problem.Details{Status: http.StatusConflict, Title: "Session not pending", Detail: "this login was already " + string(l.State), Instance: r.URL.Path})
		return
	}
	citizen, err := p.approve(ctx, l, in)
	if err != nil {
		p.denyLogin(ctx, l, err)
		status, title := http.StatusForbidden, "Login refused"
		var rf *refusal
		if !errors.As(err, &rf) {
			status, title = http.StatusServiceUnavailable, "Login failed"
		}
		detail := "the login was refused"
		switch {
		case errors.Is(err, ErrPINLocked):
			detail = "the PIN is locked after too many wrong tries"
		case errors.Is(err, ErrWrongPIN):
			detail = "wrong PIN"
		case errors.As(err, &rf):
			detail = rf.reason
		}
		problem.Write(w, problem.Details{Status: status, Title: title, Detail: detail, Instance: r.URL.Path})
		return
	}
	l.State, l.Citizen, l.AuthTime = LoginApproved, &citizen, p.now().UTC()
	if err := p.cfg.Store.UpdateLogin(ctx, l, LoginPending); err != nil {
		problem.Write(w, problem.Details{Status: http.StatusConflict, Title: "Session not pending", Detail: "the login changed state meanwhile", Instance: r.URL.Path})
		return
	}
	if err := p.audit(ctx, "citizen:"+citizen.CivilNumber, "oidc.login", l.Request.ClientID, "success", map[string]any{
		"method": MethodMobile, "certSerial": citizen.CertSerial, "session": l.ID, "acr": p.cfg.ACR, "remote": r.RemoteAddr,
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
		return Citizen{}, refuse("wrong verification code")
	}
	if p.cfg.Directory == nil || p.cfg.Keys == nil || p.cfg.PINs == nil {
		return Citizen{}, refuse("mobile ID is not configured")
	}
	cred, err := p.cfg.Directory.RemoteCredential(ctx, l.CivilNumber)
	if errors.Is(err, ErrNotFound) {
		return Citizen{}, refuse("no mobile ID credential for this civil number")
	}
	if err != nil {
		return Citizen{}, fmt.Errorf("finding the citizen's credential: %w", err)
	}
	switch err := p.cfg.PINs.CheckPIN(ctx, cred.ID, in.PIN); {
	case errors.Is(err, ErrPINLocked):
		return Citizen{}, &pinRefusal{refusal{reason: "PIN locked"}, ErrPINLocked}
	case errors.Is(err, ErrWrongPIN):
		return Citizen{}, &pinRefusal{refusal{reason: "wrong PIN"}, ErrWrongPIN}
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

// pinRefusal is a refusal that also matches ErrWrongPIN or ErrPINLocked.
type pinRefusal struct {
	refusal
	sentinel error
}

func (e *pinRefusal) Unwrap() []error { return []error{&e.refusal, e.sentinel} }

// denyLogin ends a pending login as refused (or failed) and records it.
func (p *Provider) denyLogin(ctx context.Context, l *Login, cause error) {
	l.State, l.Reason = LoginDenied, cause.Error()
	if err := p.cfg.Store.UpdateLogin(context.WithoutCancel(ctx), l, LoginPending); err != nil && !errors.Is(err, ErrConflict) {
		p.log.ErrorContext(ctx, "recording a denied login", "err", err)
	}
	p.loginFailed(ctx, MethodMobile, l.Request.ClientID, l.CivilNumber, map[string]any{"session": l.ID}, cause)
}
