package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"time"

	"github.com/thiqa/thiqa/ca/hierarchy"
	"github.com/thiqa/thiqa/cmd/thiqa/internal/config"
	"github.com/thiqa/thiqa/hsm"
	"github.com/thiqa/thiqa/hsm/keyring"
	"github.com/thiqa/thiqa/identity"
	"github.com/thiqa/thiqa/policies"
	"github.com/thiqa/thiqa/signing/csc"
)

// identityOn reports whether the digital-ID service runs in this data folder.
func identityOn(cfg *config.Config) bool { return cfg.Identity.Enabled() && cfg.CA.Enabled() }

// initIdentity creates the ID-token signing key on the token and the
// pairwise-subject secret, keeping what exists.
func initIdentity(ctx context.Context, p *platform, out io.Writer) error {
	cfg := p.cfg
	if !identityOn(cfg) {
		return nil
	}
	kt, err := hsm.ParseKeyType(cfg.Identity.KeyTypeOrDefault())
	if err != nil {
		return err
	}
	key, err := ensureServiceKey(ctx, p, cfg.Identity.Key, kt)
	if err != nil {
		return fmt.Errorf("identity token-signing key: %w", err)
	}
	path := cfg.Resolve(cfg.Identity.PairwiseSecretFile)
	if _, err := identity.EnsurePairwiseSecret(ctx, path, p.audit, "thiqa-init"); err != nil {
		return err
	}
	fmt.Fprintf(out, "  OIDC token signer %s  %s\n", key.URI(), path)
	return nil
}

// readPairwiseSecret reads the hex secret written by init.
func readPairwiseSecret(cfg *config.Config) ([]byte, error) {
	path := cfg.Resolve(cfg.Identity.PairwiseSecretFile)
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("pairwise secret (run `thiqa init --data %s`): %w", cfg.Dir(), err)
	}
	return identity.ParsePairwiseSecret(raw, path)
}

// newProvider builds the OpenID Connect provider over the platform; with
// the CSC API of the signing service (nil: none) it is also the CSC
// authorization server.
func newProvider(ctx context.Context, p *platform, api *csc.API) (*identity.Provider, error) {
	cfg := p.cfg
	label, err := cfg.HSM.KeyLabel(cfg.Identity.Key)
	if err != nil {
		return nil, err
	}
	key, err := p.token.FindKey(ctx, label)
	if err != nil {
		return nil, fmt.Errorf("identity token-signing key %s (run `thiqa init --data %s`): %w", cfg.Identity.Key, cfg.Dir(), err)
	}
	secret, err := readPairwiseSecret(cfg)
	if err != nil {
		return nil, err
	}
	// Mutual-TLS logins trust the citizen CA's certificates alone (every
	// generation of it).
	roots, err := hierarchy.GenerationsPool(cfg.Resolve(cfg.CA.CertDir), cfg.Identity.CitizenCA)
	if err != nil {
		return nil, fmt.Errorf("citizen CA certificate: %w", err)
	}
	pins, err := cfg.Identity.PINs(p.db.Identity())
	if err != nil {
		return nil, err
	}
	var phoneAuth func(http.Handler) http.Handler
	var caller func(*http.Request) (string, bool)
	if p.authn != nil {
		// The phone side: a citizen's own API credentials (Require audits
		// every refusal; refusals further in are the provider's to audit).
		phoneAuth, caller = p.authn.Require(policies.ActionApproveLogin), identity.CitizenCaller
	}
	var signingAuth *identity.SigningConfig
	if api != nil && cscOAuthOn(cfg) {
		signingAuth = csc.ProviderCredentials{API: api}.SigningConfig(cfg.Identity.CSCOAuthBase(cfg.PublicBaseURL))
	}
	return identity.New(cfg.Identity.Apply(identity.Config{
		Signer: key, PairwiseSecret: secret, CitizenRoots: roots, Country: p.cfg.CA.Country(),
		Store: p.db.Identity(), Status: p.certStatus, Directory: p.db.Identity(),
		// Mobile-ID keys: their metrics' key label is the profile, never the credential ID.
		Keys: keyring.NewResolver(p.token, p.db.Certificates(nil), policies.ProfileCitizenAuth), PINs: identity.LoginPINs{Manager: pins, Audit: p.audit}, Audit: p.audit,
		PhoneAuth: phoneAuth, Caller: caller, Signing: signingAuth,
		Logger: p.logger.With("service", "identity"), Registerer: p.reg,
	}, cfg.PublicBaseURL))
}

// wireIdentity serves the OpenID Connect provider and the administration
// of its portals (behind auth), and purges its expired state in the
// background.
func wireIdentity(ctx context.Context, p *platform, s *serving) error {
	if !identityOn(p.cfg) {
		return nil
	}
	prov, err := newProvider(ctx, p, s.csc)
	if err != nil {
		return err
	}
	prov.Register(s.mux)
	clients := &identity.ClientAPI{Store: p.db.Identity(), Audit: p.audit, Logger: p.logger.With("service", "identity")}
	clients.Register(s.mux, p.authn.Require)
	s.background = append(s.background, func(ctx context.Context) { identity.PurgeEvery(ctx, p.db.Identity(), time.Minute, p.logger) })
	return nil
}
