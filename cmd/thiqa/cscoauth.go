package main

// Wiring of the digital ID as the CSC API v2 OAuth2 authorization server:
// the provider (identity) asks the signing service (signing/csc) about
// credentials and PINs through csc.ProviderCredentials, and the authenticator
// (internal/auth) trusts the provider's key for its access tokens as
// delegated tokens only: the signing service's audience, scopes service
// and credential, the citizen role, the signing action, and not once the
// grant is revoked.

import (
	"context"
	"errors"
	"fmt"

	"github.com/thiqa/thiqa/cmd/thiqa/internal/config"
	"github.com/thiqa/thiqa/hsm"
	"github.com/thiqa/thiqa/identity"
	"github.com/thiqa/thiqa/internal/auth"
	"github.com/thiqa/thiqa/store"
)

// cscOAuthOn reports whether the digital ID opens the signing service:
// both run in this data folder.
func cscOAuthOn(cfg *config.Config) bool { return identityOn(cfg) && cfg.Signing.Enabled(cfg.CA) }

// cscDelegatedIssuers trusts the digital ID's token-signing key for the
// access tokens of the CSC authorization server, and for nothing else.
func cscDelegatedIssuers(ctx context.Context, cfg *config.Config, tok *hsm.Token, db *store.DB) ([]auth.DelegatedIssuer, error) {
	if !cscOAuthOn(cfg) {
		return nil, nil
	}
	label, err := cfg.HSM.KeyLabel(cfg.Identity.Key)
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
	d, err := identity.CSCDelegatedIssuer(cfg.Identity.IssuerOr(cfg.PublicBaseURL), cfg.Identity.CSCOAuthBase(cfg.PublicBaseURL),
		key, db.Identity())
	if err != nil {
		return nil, err
	}
	return []auth.DelegatedIssuer{d}, nil
}
