package main

// Wiring of the digital ID as the CSC API v2 OAuth2 authorization server:
// the provider (identity) asks the signing service (signing/csc) about
// credentials and PINs through cscCredentials, and the authenticator
// (internal/auth) trusts the provider's key for its access tokens as
// delegated tokens only: the signing service's audience, scopes service
// and credential, the citizen role, the signing action, and not once the
// grant is revoked.

import (
	"context"
	"crypto"
	"errors"
	"fmt"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/thiqa/thiqa/cmd/thiqa/internal/config"
	"github.com/thiqa/thiqa/hsm"
	"github.com/thiqa/thiqa/identity"
	"github.com/thiqa/thiqa/internal/auth"
	"github.com/thiqa/thiqa/internal/josesigner"
	"github.com/thiqa/thiqa/internal/pin"
	"github.com/thiqa/thiqa/policies"
	"github.com/thiqa/thiqa/signing/csc"
	"github.com/thiqa/thiqa/store"
)

// cscOAuthOn reports whether the digital ID opens the signing service:
// both run in this data folder.
func cscOAuthOn(cfg *config.Config) bool { return identityOn(cfg) && cfg.Signing.Enabled(cfg.CA) }

// cscOAuthBase is the base URI of the CSC authorization server (the
// "oauth2" member of /csc/v2/info); its access tokens name it as their
// audience, the signing service they are for.
func cscOAuthBase(cfg *config.Config) string {
	return cfg.Identity.IssuerOr(cfg.PublicBaseURL) + identity.PathCSC
}

// cscDelegatedIssuers trusts the digital ID's token-signing key for the
// access tokens of the CSC authorization server, and for nothing else.
func cscDelegatedIssuers(ctx context.Context, cfg *config.Config, tok *hsm.Token, db *store.DB) ([]auth.DelegatedIssuer, error) {
	if !cscOAuthOn(cfg) {
		return nil, nil
	}
	label, err := keyLabel(cfg, cfg.Identity.Key)
	if err != nil {
		return nil, err
	}
	key, err := tok.FindKey(ctx, label)
	switch {
	case errors.Is(err, hsm.ErrKeyNotFound):
		// No provider key yet (a half-prepared deployment, e.g. before the
		// key ceremony): nothing can have issued a delegated token, and
		// the services, wired in order, say what is missing first.
		return nil, nil
	case err != nil:
		return nil, fmt.Errorf("identity token-signing key %s (run `thiqa init --data %s`): %w", cfg.Identity.Key, cfg.Dir(), err)
	}
	jwk, err := providerJWK(key)
	if err != nil {
		return nil, err
	}
	ids := db.Identity()
	return []auth.DelegatedIssuer{{
		Issuer: cfg.Identity.IssuerOr(cfg.PublicBaseURL), Audience: cscOAuthBase(cfg), Keys: []jose.JSONWebKey{jwk},
		Scopes: []string{auth.ScopeService, auth.ScopeCredential}, Role: policies.RoleCitizen, Actions: []policies.Action{policies.ActionSign},
		Revoked: func(ctx context.Context, grantID string) (bool, error) {
			g, err := ids.Grant(ctx, grantID)
			switch {
			case errors.Is(err, identity.ErrNotFound):
				return true, nil // purged, or never issued here
			case err != nil:
				return false, err
			}
			return g.Revoked || !g.Redeemed, nil
		},
	}}, nil
}

// providerJWK is the public key the provider signs with, named as the
// provider names it (no configured key ID: the RFC 7638 thumbprint).
func providerJWK(key crypto.Signer) (jose.JSONWebKey, error) {
	js, err := josesigner.New(key, "")
	if err != nil {
		return jose.JSONWebKey{}, fmt.Errorf("identity token-signing key: %w", err)
	}
	return *js.Public(), nil
}

// cscCredentials adapts the CSC API's credential checks to
// identity.SigningCredentials, mapping the signing service's refusals to
// the provider's sentinels.
type cscCredentials struct{ api *csc.API }

// signingConfig is the provider's view of the signing service.
func (c cscCredentials) signingConfig(cfg *config.Config) *identity.SigningConfig {
	return &identity.SigningConfig{Audience: cscOAuthBase(cfg), Credentials: c, MaxHashes: c.api.MaxHashes()}
}

// CheckCredential implements identity.SigningCredentials.
func (c cscCredentials) CheckCredential(ctx context.Context, civil, credentialID string) error {
	return signingErr(c.api.CheckCredential(ctx, civil, credentialID))
}

// CheckSigningPIN implements identity.SigningCredentials.
func (c cscCredentials) CheckSigningPIN(ctx context.Context, civil, clientID string, req *identity.CredentialRequest, value string) error {
	az, err := authorization(civil, clientID, req)
	if err != nil {
		return err
	}
	return signingErr(c.api.CheckPIN(ctx, az, value))
}

// Activate implements identity.SigningCredentials.
func (c cscCredentials) Activate(ctx context.Context, civil, clientID string, req *identity.CredentialRequest) (string, time.Time, error) {
	az, err := authorization(civil, clientID, req)
	if err != nil {
		return "", time.Time{}, err
	}
	sad, exp, err := c.api.Activate(ctx, az)
	return sad, exp, signingErr(err)
}

// authorization is the signing service's form of a credential request.
func authorization(civil, clientID string, req *identity.CredentialRequest) (csc.CredentialAuthorization, error) {
	h := map[string]crypto.Hash{"2.16.840.1.101.3.4.2.1": crypto.SHA256, "2.16.840.1.101.3.4.2.2": crypto.SHA384, "2.16.840.1.101.3.4.2.3": crypto.SHA512}[req.HashAlgorithmOID]
	if h == 0 {
		return csc.CredentialAuthorization{}, fmt.Errorf("hash algorithm %q: %w", req.HashAlgorithmOID, identity.ErrCredentialUnusable)
	}
	return csc.CredentialAuthorization{Citizen: civil, CredentialID: req.CredentialID, Hash: h, Hashes: req.Hashes, Client: clientID}, nil
}

// signingErr maps the signing service's refusals of a credential or PIN
// to identity's sentinels, keeping the reason; failures pass as they are.
func signingErr(err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, pin.ErrLocked):
		return fmt.Errorf("%w: %w", identity.ErrPINLocked, err)
	case errors.Is(err, pin.ErrWrong):
		return fmt.Errorf("%w: %w", identity.ErrWrongPIN, err)
	case csc.Unusable(err):
		return fmt.Errorf("%w: %w", identity.ErrCredentialUnusable, err)
	}
	return err
}
