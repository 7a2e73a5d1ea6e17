package identity

import (
	"context"
	"crypto"
	"errors"
	"fmt"

	"github.com/go-jose/go-jose/v4"

	"github.com/thiqa/thiqa/internal/auth"
	"github.com/thiqa/thiqa/internal/josesigner"
	"github.com/thiqa/thiqa/policies"
)

// GrantReader reads the grants the provider issued (a Store does).
type GrantReader interface {
	Grant(ctx context.Context, id string) (*Grant, error)
}

// CSCDelegatedIssuer is how far the authenticator (internal/auth) trusts
// the provider as the CSC API v2 OAuth2 authorization server, and for
// nothing else: access tokens of issuer signed with key (the provider's
// token-signing key, named as the provider names it: the RFC 7638
// thumbprint), for audience (the signing service's CSC base URI), with the
// scopes service and credential, acting as a citizen for the signing
// action alone, and no longer once their grant is revoked, unredeemed or
// gone.
func CSCDelegatedIssuer(issuer, audience string, key crypto.Signer, grants GrantReader) (auth.DelegatedIssuer, error) {
	js, err := josesigner.New(key, "")
	if err != nil {
		return auth.DelegatedIssuer{}, fmt.Errorf("identity token-signing key: %w", err)
	}
	return auth.DelegatedIssuer{
		Issuer: issuer, Audience: audience, Keys: []jose.JSONWebKey{*js.Public()},
		Scopes: []string{auth.ScopeService, auth.ScopeCredential}, Role: policies.RoleCitizen, Actions: []policies.Action{policies.ActionSign},
		Revoked: func(ctx context.Context, grantID string) (bool, error) {
			g, err := grants.Grant(ctx, grantID)
			switch {
			case errors.Is(err, ErrNotFound):
				return true, nil // purged, or never issued here
			case err != nil:
				return false, err
			}
			return g.Revoked || !g.Redeemed, nil
		},
	}, nil
}
