package signing

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/thiqa/thiqa/internal/audit"
	"github.com/thiqa/thiqa/internal/auth"
	"github.com/thiqa/thiqa/internal/pin"
	"github.com/thiqa/thiqa/internal/problem"
	"github.com/thiqa/thiqa/policies"
)

// The PIN life cycle of a citizen's credentials (sole control): the
// citizen changes the PIN with the old one; a registration officer, after
// checking the citizen's identity at the desk, resets it, which clears it,
// unlocks it and returns a one-time activation code (shown once, kept only
// as a hash, expiring); the citizen sets the new PIN with the code. The
// same endpoints serve the login PIN of a mobile ID (a citizen-auth key on
// the token, package identity), whose enrolment also ends with an
// activation code: no operator ever chooses or sees a citizen's PIN.

// Audit actions of the PIN life cycle.
const (
	// ActionPINChange records a change of a PIN by its holder.
	ActionPINChange = "credential.pin.change"
	// ActionPINReset records an officer's reset (and the activation code issued).
	ActionPINReset = string(policies.ActionResetPIN)
	// ActionPINActivate records a PIN set with an activation code.
	ActionPINActivate = "credential.pin.activate"
	// ActionPINLocked records the wrong try that locked a PIN.
	ActionPINLocked = "credential.pin.locked"
)

// Kinds of credential the PIN endpoints name in answers and records.
const (
	// KindSigning is a citizen's remote-signing credential (citizen-signing).
	KindSigning = "signing"
	// KindSeal is an agency's seal credential (organisation-seal): no PIN.
	KindSeal = "seal"
	// KindMobileID is a citizen's mobile ID (citizen-auth, login PIN).
	KindMobileID = "mobile-id"
)

// MobileID is a citizen's enrolled mobile ID as the credential endpoints
// see it.
type MobileID struct {
	// CredentialID names the citizen-auth key on the token.
	CredentialID string
	// CivilNumber is the citizen's.
	CivilNumber string
	// CertSerial is its current certificate's serial (lower-case hex) and
	// NotAfter its expiry; Revoked whether it is revoked.
	CertSerial string
	NotAfter   time.Time
	Revoked    bool
	// Certificate is the current certificate (nil when there is none).
	// Its serialNumber names the number's country: a mobile ID of another
	// country's number is no citizen's here (Options.Country).
	Certificate *x509.Certificate
	// PINSet, PINFailures and ActivationPending are the login PIN's state.
	PINSet            bool
	PINFailures       int
	ActivationPending bool
}

// MobileIDs finds the citizens' mobile IDs, whose login PINs the credential
// endpoints manage too (store.SigningMobileIDs, over the identity store).
type MobileIDs interface {
	// MobileID returns the enrolled mobile ID credentialID, or an error
	// wrapping ErrNotFound.
	MobileID(ctx context.Context, credentialID string) (*MobileID, error)
	// MobileIDsOf lists a citizen's enrolled mobile IDs, oldest first.
	MobileIDsOf(ctx context.Context, civilNumber string) ([]MobileID, error)
}

// PINChangeRequest is the body of POST /api/v1/credentials/{id}/pin/change.
type PINChangeRequest struct {
	// Old is the current PIN, New the PIN that replaces it.
	Old string `json:"old"`
	New string `json:"new"`
}

// PINActivateRequest is the body of POST /api/v1/credentials/{id}/pin/activate.
type PINActivateRequest struct {
	// ActivationCode is the one-time code of the reset or the enrolment.
	ActivationCode string `json:"activationCode"`
	// PIN is the new PIN.
	PIN string `json:"pin"`
}

// PINResetResponse is the answer of POST /api/v1/credentials/{id}/pin/reset:
// the activation code, shown this once.
type PINResetResponse struct {
	CredentialID   string    `json:"credentialID"`
	Kind           string    `json:"kind"`
	ActivationCode string    `json:"activationCode"`
	ExpiresAt      time.Time `json:"expiresAt"`
}

// PINStateResponse is the answer of a change or an activation.
type PINStateResponse struct {
	CredentialID string `json:"credentialID"`
	Kind         string `json:"kind"`
	// PIN is "set".
	PIN string `json:"pin"`
}

// pinTarget is a credential whose PIN a life-cycle request manages.
type pinTarget struct {
	id, kind, owner string
	pins            *pin.Manager
}

// registerPINLifeCycle mounts the life-cycle endpoints behind guard.
func (s *Service) registerPINLifeCycle(mux Mux, guard Guard) {
	mux.Handle("POST /api/v1/credentials/{id}/pin/change", guard(policies.ActionManagePIN)(http.HandlerFunc(s.changePIN)))
	mux.Handle("POST /api/v1/credentials/{id}/pin/reset", guard(policies.ActionResetPIN)(http.HandlerFunc(s.resetPIN)))
	mux.Handle("POST /api/v1/credentials/{id}/pin/activate", guard(policies.ActionManagePIN)(http.HandlerFunc(s.activatePIN)))
}

// pinTargetOf finds credential id: an enrolled mobile ID or a citizen's
// signing credential (registered on first use, as everywhere: for its
// owner alone when owner is set). A seal credential has no PIN, and an
// unknown one is ErrCredentialRefused, as is, when owner is set, any
// credential not owner's own (a seal credential included: load refuses it).
func (s *Service) pinTargetOf(ctx context.Context, id, owner string) (*pinTarget, error) {
	if id == "" || len(id) > 64 {
		return nil, ErrCredentialRefused
	}
	if s.mobile != nil && s.mobilePINs != nil {
		m, err := s.mobile.MobileID(ctx, id)
		switch {
		case err == nil && owner != "" && s.foreignMobileID(m):
			// Another country's holder of the number: for the citizen
			// it is as unknown as anyone else's credential.
			return nil, ErrCredentialRefused
		case err == nil:
			return &pinTarget{id: id, kind: KindMobileID, owner: m.CivilNumber, pins: s.mobilePINs}, nil
		case !errors.Is(err, ErrNotFound):
			return nil, fmt.Errorf("reading mobile ID %s: %w", id, err)
		}
	}
	kind := ""
	if owner != "" {
		kind = OwnerCitizen
	}
	c, err := s.load(ctx, id, kind, owner)
	if err != nil {
		return nil, err
	}
	if c.rec.OwnerKind != OwnerCitizen {
		return nil, Refuse(ErrBadRequest, "credential %s is a seal credential: it has no PIN", id)
	}
	return &pinTarget{id: id, kind: KindSigning, owner: c.rec.OwnerID, pins: s.pins}, nil
}

// foreignMobileID reports whether m's certificate names a national
// identity number of another country than the deployment's: its
// CivilNumber is only the number, which a citizen here may have as well.
// A mobile ID without a certificate (none known) is not foreign.
func (s *Service) foreignMobileID(m *MobileID) bool {
	return s.country != "" && m.Certificate != nil && auth.CivilNumberIn(s.country, m.Certificate.Subject.SerialNumber) == ""
}

// citizenTarget is pinTargetOf for the citizen who owns the credential:
// anyone else is refused as for an unknown credential.
func (s *Service) citizenTarget(ctx context.Context, id, citizen string) (*pinTarget, error) {
	if citizen == "" {
		return nil, Refuse(ErrNoIdentity, "the caller has no citizen identity")
	}
	t, err := s.pinTargetOf(ctx, id, citizen)
	if err != nil {
		return nil, err
	}
	if t.owner != citizen {
		return nil, ErrCredentialRefused
	}
	return t, nil
}

// pinDetails are the details of a life-cycle record of credential id.
func pinDetails(id string, t *pinTarget) map[string]any {
	details := map[string]any{"credential": id}
	if t != nil {
		details["kind"] = t.kind
		details["owner"] = t.owner
	}
	return details
}

// pinRecord prepares the success record of action on t by actor, which the
// store commits with the change (pin.Manager's …Recorded methods): a PIN
// is never changed without its record.
func (s *Service) pinRecord(action, actor, id string, t *pinTarget) (audit.Sealer, error) {
	seal, err := s.audit.Prepare(audit.Entry{Actor: actor, Action: action, Object: id, Outcome: audit.OutcomeSuccess, Details: pinDetails(id, t)})
	if err != nil {
		return nil, auditFailed(err)
	}
	return seal, nil
}

// pinAnswer answers a life-cycle request: the problem of err, or v with
// status. A success's record was committed with the change (pinRecord);
// a refusal or failure is audited here (one record, naming the caller).
// A refusal whose record cannot be written is answered 500, as is a
// change whose record could not be (then nothing changed).
func (s *Service) pinAnswer(w http.ResponseWriter, r *http.Request, action, actor, id string, t *pinTarget, err error, status int, v any) {
	ctx := r.Context()
	var code int
	var reason string
	if err != nil {
		var outcome string
		code, reason, outcome = Classify(err)
		if code >= 500 {
			s.logger.WarnContext(ctx, "PIN life cycle failed", "action", action, "credential", id, "err", err)
		}
		details := pinDetails(id, t)
		if reason != "" {
			details["reason"] = reason
		}
		details["caller"] = auth.CallerOf(ctx)
		if _, aerr := s.audit.Append(ctx, audit.Entry{Actor: actor, Action: action, Object: id, Outcome: outcome, Details: details}); aerr != nil {
			s.logger.ErrorContext(ctx, "audit append failed", "action", action, "err", aerr)
			if !errors.Is(err, ErrAudit) {
				// No refusal leaves without its record either.
				err = refusalUnrecorded(err, aerr)
			}
			code, reason, _ = Classify(err)
		}
	}
	if err != nil {
		problem.Write(w, problem.Details{Status: code, Detail: reason, Instance: r.URL.Path, Type: problemTypeOf(code, err)})
		return
	}
	w.Header().Set("Cache-Control", "no-store")
	WriteJSON(w, status, v)
}

// changePIN serves POST /api/v1/credentials/{id}/pin/change: the citizen
// owning the credential replaces its PIN, giving the old one (a wrong old
// PIN counts towards the lock).
func (s *Service) changePIN(w http.ResponseWriter, r *http.Request) {
	citizen, id := CitizenOf(r), r.PathValue("id")
	t, err := s.citizenTarget(r.Context(), id, citizen)
	var req PINChangeRequest
	if err == nil {
		err = DecodeJSON(w, r, &req)
	}
	if err == nil && (req.Old == "" || req.New == "") {
		err = Refuse(ErrBadRequest, `the body must be {"old": "…", "new": "…"}`)
	}
	var seal, lock audit.Sealer
	if err == nil {
		seal, err = s.pinRecord(ActionPINChange, citizen, id, t)
	}
	if err == nil {
		lock, err = s.lockRecord(citizen, t)
	}
	if err == nil {
		err = lockUnrecorded(t.pins.ChangeRecorded(r.Context(), id, req.Old, req.New, seal, lock))
	}
	s.pinAnswer(w, r, ActionPINChange, citizen, id, t, err, http.StatusOK, PINStateResponse{CredentialID: id, Kind: kindOf(t), PIN: "set"})
}

// resetPIN serves POST /api/v1/credentials/{id}/pin/reset for a
// registration officer: the PIN is cleared and unlocked, and the answer
// carries the one-time activation code, which is nowhere else.
func (s *Service) resetPIN(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	officer := "unknown"
	if pr, ok := auth.FromContext(r.Context()); ok && pr.Subject != "" {
		officer = pr.Subject
	}
	t, err := s.pinTargetOf(r.Context(), id, "")
	var a pin.Activation
	var seal audit.Sealer
	if err == nil {
		seal, err = s.pinRecord(ActionPINReset, officer, id, t)
	}
	if err == nil {
		a, err = t.pins.ResetRecorded(r.Context(), id, seal)
		if errors.Is(err, pin.ErrNoSubject) {
			err = ErrCredentialRefused
		}
	}
	s.pinAnswer(w, r, ActionPINReset, officer, id, t, err, http.StatusOK,
		PINResetResponse{CredentialID: id, Kind: kindOf(t), ActivationCode: a.Code, ExpiresAt: a.Expires})
}

// activatePIN serves POST /api/v1/credentials/{id}/pin/activate: the
// citizen owning the credential sets the PIN with the activation code of
// the reset or of the enrolment.
func (s *Service) activatePIN(w http.ResponseWriter, r *http.Request) {
	citizen, id := CitizenOf(r), r.PathValue("id")
	t, err := s.citizenTarget(r.Context(), id, citizen)
	var req PINActivateRequest
	if err == nil {
		err = DecodeJSON(w, r, &req)
	}
	if err == nil && (req.ActivationCode == "" || req.PIN == "" || len(req.ActivationCode) > 64) {
		err = Refuse(ErrBadRequest, `the body must be {"activationCode": "…", "pin": "…"}`)
	}
	var seal audit.Sealer
	if err == nil {
		seal, err = s.pinRecord(ActionPINActivate, citizen, id, t)
	}
	if err == nil {
		err = t.pins.ActivateRecorded(r.Context(), id, req.ActivationCode, req.PIN, seal)
	}
	s.pinAnswer(w, r, ActionPINActivate, citizen, id, t, err, http.StatusOK, PINStateResponse{CredentialID: id, Kind: kindOf(t), PIN: "set"})
}

// kindOf names t's kind ("" when there is none).
func kindOf(t *pinTarget) string {
	if t == nil {
		return ""
	}
	return t.kind
}

// lockRecord prepares the record of the wrong try that locks t's PIN
// (credential.pin.locked), which the store commits once the try is known
// to have locked it (pin.Manager.CheckRecorded): an officer's reset is then
// the way back.
func (s *Service) lockRecord(actor string, t *pinTarget) (audit.Sealer, error) {
	seal, err := s.audit.Prepare(audit.Entry{Actor: actor, Action: ActionPINLocked, Object: t.id, Outcome: audit.OutcomeSuccess,
		Details: map[string]any{"kind": t.kind, "owner": t.owner, "maxFailures": t.pins.Params().MaxFailures}})
	if err != nil {
		return nil, auditFailed(err)
	}
	return seal, nil
}

// lockUnrecorded makes a lock whose record could not be written
// (pin.ErrLockUnrecorded) a failure of the audit log (ErrAudit, 500): the
// try counted and the PIN stays locked, but the answer says nothing of the
// PIN.
func lockUnrecorded(err error) error {
	if errors.Is(err, pin.ErrLockUnrecorded) {
		return auditFailed(err)
	}
	return err
}
