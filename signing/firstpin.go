package signing

import (
	"context"
	"fmt"
	"time"

	"github.com/thiqa/thiqa/internal/audit"
	"github.com/thiqa/thiqa/internal/auth"
	"github.com/thiqa/thiqa/internal/pin"
	"github.com/thiqa/thiqa/policies"
)

// The first PIN of a citizen's credential (signing.pinPolicy.firstPINActivation).
// By default the citizen sets it with their bearer token alone (POST
// /api/v1/credentials/{id}/pin), so a stolen token of a citizen whose new
// credential has no PIN yet chooses the PIN. With the setting on, the first
// PIN is set as a PIN after a reset is: with a one-time activation code that
// the officer who issued the credential hands to the citizen at the desk.
// The issuance registers the credential with the code pending
// (RegisterIssuedBy) and answers it once; the bearer token alone sets no
// PIN (firstPINByCode), whatever the credential's history: one issued
// before the setting was on, or one whose registration at issuance failed,
// waits for an officer's reset.

// IssuedActivation is the activation code a credential's first PIN is set
// with, issued with the credential: shown once, kept only as a hash.
type IssuedActivation struct {
	// Code is the one-time activation code ("" when none was issued).
	Code string
	// ExpiresAt ends its use (signing.pinPolicy.activationCodeLifetime).
	ExpiresAt time.Time
}

// RegisterIssuedBy registers the credential of a certificate just issued
// by an officer with its key on the token (keyInHSM), so that its owner
// finds it before its first use; an already registered credential is left
// as it is. With signing.pinPolicy.firstPINActivation, a citizen's signing
// credential registered without a PIN and without a pending code is also
// given an activation code, which it returns (the officer's answer shows
// it once). The code's record (credential.pin.reset, actor the officer of
// ctx's principal, with the certificate's serial and firstPIN, never the
// code) is committed with the pending code. Otherwise, for seals, and
// for mobile IDs and other profiles (not registered here), it returns the
// zero IssuedActivation. An error leaves the credential without a code:
// its first PIN then needs an officer's reset.
func (s *Service) RegisterIssuedBy(ctx context.Context, ic IssuedCertificate) (IssuedActivation, error) {
	if ic.Profile != policies.ProfileOrganisationSeal && ic.Profile != policies.ProfileCitizenSigning {
		return IssuedActivation{}, nil
	}
	rec, err := s.register(ctx, &ic)
	if err != nil {
		return IssuedActivation{}, err
	}
	if !s.cfg.FirstPINActivation || rec.OwnerKind != OwnerCitizen || rec.PINSet || rec.ActivationPending {
		return IssuedActivation{}, nil
	}
	officer := "unknown"
	if pr, ok := auth.FromContext(ctx); ok && pr.Subject != "" {
		officer = pr.Subject
	}
	t := &pinTarget{id: rec.ID, kind: KindSigning, owner: rec.OwnerID, pins: s.pins}
	a, err := s.pins.ResetRecordedWith(ctx, rec.ID, func(a pin.Activation) (audit.Sealer, error) {
		details := pinDetails(rec.ID, t)
		details["firstPIN"] = true
		details["certificate"] = ic.Serial
		details["expiresAt"] = a.Expires.Format(time.RFC3339)
		seal, err := s.audit.Prepare(audit.Entry{Actor: officer, Action: ActionPINReset, Object: rec.ID, Outcome: audit.OutcomeSuccess, Details: details})
		if err != nil {
			return nil, auditFailed(err)
		}
		return seal, nil
	})
	if err != nil {
		return IssuedActivation{}, fmt.Errorf("credential %s: issuing the first PIN's activation code: %w", rec.ID, err)
	}
	s.forget(rec.ID)
	return IssuedActivation{Code: a.Code, ExpiresAt: a.Expires}, nil
}

// firstPINByCode refuses, with signing.pinPolicy.firstPINActivation, the
// first PIN of credential id set with the bearer token alone
// (ErrFirstPINActivation): the citizen sets it with the activation code. A
// credential with a PIN is left to setPIN's own answer (already set).
func (s *Service) firstPINByCode(ctx context.Context, id string) error {
	if !s.cfg.FirstPINActivation {
		return nil
	}
	rec, err := s.store.Credential(ctx, id)
	if err != nil {
		return fmt.Errorf("reading credential %s: %w", id, err)
	}
	switch {
	case rec.PINSet:
		return nil
	case rec.ActivationPending:
		return Refuse(ErrFirstPINActivation, "the signing PIN of this credential awaits its activation code: set it with the code the registration officer handed over (POST /api/v1/credentials/{id}/pin/activate)")
	}
	return Refuse(ErrFirstPINActivation, "this service sets the first signing PIN with an activation code only: a registration officer issues one (POST /api/v1/credentials/{id}/pin/reset), then set the PIN with it (POST /api/v1/credentials/{id}/pin/activate)")
}
