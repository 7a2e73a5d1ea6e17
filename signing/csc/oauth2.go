package csc

// What the CSC API v2 OAuth2 authorization server (section 8.4: the
// digital-ID provider, package identity, wired by cmd/thiqa) asks of the
// signing service for a credential authorization ("scope=credential"): is
// this a usable credential of the citizen, is this their signing PIN, and
// the one-time authorisation (SAD) of exactly the hashes, which the access
// token then carries. The PIN is the one credentials/authorize checks, with
// the same lockout and the same audit records.

import (
	"context"
	"crypto"
	"errors"
	"fmt"
	"time"

	"github.com/thiqa/thiqa/internal/audit"
	"github.com/thiqa/thiqa/internal/pin"
	"github.com/thiqa/thiqa/signing"
)

// MaxHashes is the most hashes one authorisation may name (the service's
// MaxHashesPerSAD, credentials/info's multisign).
func (a *API) MaxHashes() int { return a.s.Config().MaxHashesPerSAD }

// CheckCredential reports whether credID is a signing credential of the
// citizen with that civil number, usable now and enabled (its PIN set and
// not locked): nil, or the signing service's refusal
// (signing.ErrCredentialRefused, ErrCertificateNotValid,
// ErrCertificateRevoked, pin.ErrNotSet, pin.ErrLocked) or a failure.
func (a *API) CheckCredential(ctx context.Context, citizen, credID string) error {
	cred, err := a.s.Credential(ctx, credID, signing.OwnerCitizen, citizen)
	if err != nil {
		return err
	}
	set, locked, err := a.s.PINStatus(ctx, cred.ID())
	switch {
	case err != nil:
		return err
	case !set:
		return pin.ErrNotSet
	case locked:
		return pin.ErrLocked
	}
	return nil
}

// CredentialAuthorization is what a citizen authorises through the OAuth2
// authorization server: signatures of exact hashes with one credential.
type CredentialAuthorization struct {
	// Citizen is the civil number of the citizen who logged in.
	Citizen string
	// CredentialID is one of their signing credentials.
	CredentialID string
	// Hash is the algorithm of Hashes (SHA-256, SHA-384 or SHA-512).
	Hash crypto.Hash
	// Hashes are the hashes authorised, each once.
	Hashes [][]byte
	// Client is the OAuth client (the signing application).
	Client string
}

// CheckPIN checks the citizen's signing PIN for the authorization (slow
// hash; locked after too many consecutive wrong tries, as
// credentials/authorize) and records the check as credential.authorize
// with method oauth2. The errors are package pin's (ErrNotSet, ErrLocked, a
// *pin.WrongError) or the signing service's refusals of the credential;
// an outcome whose record cannot be written, a refusal too, is an error
// wrapping signing.ErrAudit alone.
func (a *API) CheckPIN(ctx context.Context, az CredentialAuthorization, value string) error {
	details := map[string]any{"method": "oauth2", "client": az.Client, "hashes": hexList(az.Hashes), "hashAlgorithm": az.Hash.String()}
	cred, err := a.s.Credential(ctx, az.CredentialID, signing.OwnerCitizen, az.Citizen)
	if err == nil {
		err = a.s.CheckCredentialPIN(ctx, cred, value)
	}
	outcome := audit.OutcomeSuccess
	if err != nil {
		var reason string
		_, _, _, reason, outcome = classify(err)
		details["reason"] = reason
	}
	if aerr := a.s.Record(ctx, audit.Entry{Actor: az.Citizen, Action: signing.ActionAuthorize, Object: az.CredentialID,
		Outcome: outcome, Details: details}); aerr != nil {
		if err != nil {
			// No refusal leaves without its record: unrecorded, it is a
			// failure (the authorization server answers server_error).
			return fmt.Errorf("%w: %w (unrecorded: %v)", signing.ErrAudit, aerr, err)
		}
		return fmt.Errorf("%w: %v", signing.ErrAudit, aerr)
	}
	return err
}

// Activate records the one-time authorisation (SAD) of exactly the hashes
// of az, whose PIN CheckPIN accepted, and returns it with its expiry: the
// access token of scope credential carries it, and signatures/signHash or
// /api/v1/sign/complete spend it.
func (a *API) Activate(ctx context.Context, az CredentialAuthorization) (string, time.Time, error) {
	switch {
	case len(az.Hashes) == 0 || len(az.Hashes) > a.MaxHashes():
		return "", time.Time{}, signing.Refuse(signing.ErrBadRequest, "an authorisation names 1 to %d hashes", a.MaxHashes())
	case signing.HashOID(az.Hash) == "":
		return "", time.Time{}, signing.Refuse(signing.ErrBadRequest, "the hash algorithm is not SHA-256, SHA-384 or SHA-512")
	}
	for i, h := range az.Hashes {
		if len(h) != az.Hash.Size() {
			return "", time.Time{}, signing.Refuse(signing.ErrBadRequest, "hashes[%d] is not a %s hash", i, az.Hash)
		}
	}
	cred, err := a.s.Credential(ctx, az.CredentialID, signing.OwnerCitizen, az.Citizen)
	if err != nil {
		return "", time.Time{}, err
	}
	sad, exp, err := a.s.IssueSAD(ctx, cred, az.Hash, az.Hashes)
	if err != nil {
		return "", time.Time{}, fmt.Errorf("recording the authorisation: %w", err)
	}
	return sad, exp, nil
}

// Unusable reports whether err refuses the credential itself (unknown,
// another's, certificate expired or revoked, PIN not set), as opposed to a
// PIN check or a failure: what CheckCredential's callers tell the citizen.
func Unusable(err error) bool {
	return errors.Is(err, signing.ErrCredentialRefused) || errors.Is(err, signing.ErrCertificateNotValid) ||
		errors.Is(err, signing.ErrCertificateRevoked) || errors.Is(err, pin.ErrNotSet)
}
