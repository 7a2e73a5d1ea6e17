package csc

// The CSC API's credential checks in the shape the digital-ID provider
// declares (identity.SigningCredentials), with the signing service's
// refusals mapped to the provider's sentinels.

import (
	"context"
	"crypto"
	"errors"
	"fmt"
	"time"

	"github.com/thiqa/thiqa/identity"
	"github.com/thiqa/thiqa/internal/pin"
)

// ProviderCredentials is the API as the CSC authorization server (the
// digital-ID provider) asks it: identity.SigningCredentials.
type ProviderCredentials struct{ API *API }

// SigningConfig is the provider's view of the signing service, whose
// access tokens name audience (the CSC authorization server's base URI).
func (c ProviderCredentials) SigningConfig(audience string) *identity.SigningConfig {
	return &identity.SigningConfig{Audience: audience, Credentials: c, MaxHashes: c.API.MaxHashes()}
}

// CheckCredential implements identity.SigningCredentials.
func (c ProviderCredentials) CheckCredential(ctx context.Context, civil, credentialID string) error {
	return providerErr(c.API.CheckCredential(ctx, civil, credentialID))
}

// CheckSigningPIN implements identity.SigningCredentials.
func (c ProviderCredentials) CheckSigningPIN(ctx context.Context, civil, clientID string, req *identity.CredentialRequest, value string) error {
	az, err := providerAuthorization(civil, clientID, req)
	if err != nil {
		return err
	}
	return providerErr(c.API.CheckPIN(ctx, az, value))
}

// Activate implements identity.SigningCredentials.
func (c ProviderCredentials) Activate(ctx context.Context, civil, clientID string, req *identity.CredentialRequest) (string, time.Time, error) {
	az, err := providerAuthorization(civil, clientID, req)
	if err != nil {
		return "", time.Time{}, err
	}
	sad, exp, err := c.API.Activate(ctx, az)
	return sad, exp, providerErr(err)
}

// providerHashes are the hash algorithms a credential request may name,
// by OID.
var providerHashes = map[string]crypto.Hash{
	"2.16.840.1.101.3.4.2.1": crypto.SHA256, "2.16.840.1.101.3.4.2.2": crypto.SHA384, "2.16.840.1.101.3.4.2.3": crypto.SHA512,
}

// providerAuthorization is the signing service's form of a credential
// request.
func providerAuthorization(civil, clientID string, req *identity.CredentialRequest) (CredentialAuthorization, error) {
	h := providerHashes[req.HashAlgorithmOID]
	if h == 0 {
		return CredentialAuthorization{}, fmt.Errorf("hash algorithm %q: %w", req.HashAlgorithmOID, identity.ErrCredentialUnusable)
	}
	return CredentialAuthorization{Citizen: civil, CredentialID: req.CredentialID, Hash: h, Hashes: req.Hashes, Client: clientID}, nil
}

// providerErr maps the signing service's refusals of a credential or PIN
// to identity's sentinels, keeping the reason; failures pass as they are.
func providerErr(err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, pin.ErrLocked):
		return fmt.Errorf("%w: %w", identity.ErrPINLocked, err)
	case errors.Is(err, pin.ErrWrong):
		return fmt.Errorf("%w: %w", identity.ErrWrongPIN, err)
	case Unusable(err):
		return fmt.Errorf("%w: %w", identity.ErrCredentialUnusable, err)
	}
	return err
}
