package auth

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/go-jose/go-jose/v4"

	"github.com/thiqa/thiqa/policies"
)

// DelegatedIssuer trusts an authorization server of this deployment for
// OAuth 2.0 access tokens (RFC 9068, typ at+jwt) that a citizen delegated
// to a client for a scope: the digital-ID provider acting as the CSC API
// v2 authorization server (section 8.4). Its tokens are accepted for
// exactly the configured audience, scopes and actions; they act with Role
// for their subject, whatever they claim, and stop the moment Revoked says
// so. The issuer is trusted for nothing else: a token of it without a
// scope, for another audience or of another type is refused.
type DelegatedIssuer struct {
	// Issuer is the exact value of the tokens' "iss" claim.
	Issuer string
	// Audience must be one of the tokens' "aud" values (the signing service).
	Audience string
	// Keys are the issuer's public signing keys, each naming its algorithm.
	Keys []jose.JSONWebKey
	// Scopes are the scopes a token may carry; every scope it names must be
	// one of them, and it must name one.
	Scopes []string
	// Role is the role the tokens act with (citizen).
	Role policies.Role
	// Actions are the only actions the tokens may perform; Require refuses
	// every other action with 403, whatever Role allows.
	Actions []policies.Action
	// Revoked, when set, is asked on every request whether the grant of the
	// token with that ID (jti) was revoked (a reused authorization code
	// revokes what it issued). An error refuses the request as
	// ErrUnavailable.
	Revoked func(ctx context.Context, tokenID string) (bool, error)
}

// The scopes of the CSC API v2 OAuth2 authorization (section 8.4.2), the
// delegated access tokens this deployment issues.
const (
	// ScopeService is access to the CSC API (credentials/list, info,
	// authorize with the PIN, signHash with a SAD).
	ScopeService = "service"
	// ScopeCredential authorises the signature of exact hashes with one
	// credential, once: the token carries its SAD.
	ScopeCredential = "credential"
)

// Grant is what a delegated access token authorises: its claims beyond the
// registered ones. The authorization server writes them (it embeds Grant
// in its claims); Principal.Grant gives them to the resource.
type Grant struct {
	// ClientID is the client the citizen delegated to.
	ClientID string `json:"client_id"`
	// Scope is the space-separated scope ("service" or "credential").
	Scope string `json:"scope"`
	// CredentialID is the credential a "credential" token authorises.
	CredentialID string `json:"credentialID,omitempty"`
	// NumSignatures is how many signatures it authorises.
	NumSignatures int `json:"numSignatures,omitempty"`
	// HashAlgorithmOID names the algorithm of Hashes.
	HashAlgorithmOID string `json:"hashAlgorithmOID,omitempty"`
	// Hashes are the hashes it authorises (base64url, unpadded), each once.
	Hashes []string `json:"hashes,omitempty"`
	// SAD is the one-time signature activation data bound to the token:
	// the resource consumes it with the first signature.
	SAD string `json:"sad,omitempty"`
	// TokenID is the token's jti (the registered claim, not a member).
	TokenID string `json:"-"`
}

// HasScope reports whether the grant carries scope s.
func (g *Grant) HasScope(s string) bool {
	return g != nil && slices.Contains(strings.Fields(g.Scope), s)
}

// staticSource serves a fixed key set (a DelegatedIssuer's).
type staticSource struct{ keys []jose.JSONWebKey }

func (s staticSource) lookup(_ context.Context, kid string) ([]jose.JSONWebKey, error) {
	return selectKeys(s.keys, kid), nil
}

func (staticSource) reload(context.Context) error { return nil }

// delegatedIssuer validates d and builds the issuer that verifies its tokens.
func delegatedIssuer(d DelegatedIssuer) (*issuer, error) {
	switch {
	case d.Issuer == "" || d.Audience == "":
		return nil, errors.New("issuer and audience are required")
	case len(d.Keys) == 0:
		return nil, errors.New("at least one key is required")
	case len(d.Scopes) == 0:
		return nil, errors.New("at least one scope is required")
	case len(d.Actions) == 0:
		return nil, errors.New("at least one action is required")
	}
	if _, err := policies.ParseRole(string(d.Role)); err != nil {
		return nil, err
	}
	is := &issuer{cfg: IssuerConfig{Issuer: d.Issuer, Audience: d.Audience}, skew: DefaultClockSkew, delegated: &d}
	var keys []jose.JSONWebKey
	for i, k := range d.Keys {
		pub := k.Public()
		alg := jose.SignatureAlgorithm(k.Algorithm)
		if !pub.Valid() || !supportedAlgorithms[k.Algorithm] || !keyFits(pub, alg) {
			return nil, fmt.Errorf("key %d (%q) is not a public signing key naming a supported algorithm", i, k.KeyID)
		}
		keys = append(keys, pub)
		if !slices.Contains(is.algs, alg) {
			is.algs = append(is.algs, alg)
		}
	}
	is.source = staticSource{keys: keys}
	return is, nil
}

// delegatedPrincipal builds the principal of a delegated token whose
// registered claims were checked: its scopes must all be configured ones,
// its role is the configured one.
func (is *issuer) delegatedPrincipal(c tokenClaims) (*Principal, error) {
	scopes := strings.Fields(c.Scope)
	if len(scopes) == 0 {
		return nil, errors.New("delegated access token carries no scope")
	}
	for _, s := range scopes {
		if !slices.Contains(is.delegated.Scopes, s) {
			return nil, fmt.Errorf("delegated access token carries the unknown scope %q", s)
		}
	}
	if c.ClientID == "" {
		return nil, errors.New("delegated access token names no client_id")
	}
	g := c.Grant
	g.Hashes = slices.Clone(c.Hashes)
	g.TokenID = c.ID
	p := &Principal{Subject: c.Subject, Method: MethodJWT, Issuer: is.cfg.Issuer, Roles: []policies.Role{is.delegated.Role},
		Grant: &g, actions: is.delegated.Actions, Expires: c.Expiry.Time()}
	switch is.delegated.Role {
	case policies.RoleCitizen:
		p.CivilNumber = c.Subject
	case policies.RoleAgency:
		p.OrganizationIdentifier = c.Subject
	}
	return p, nil
}

// checkRevoked asks the delegated issuer whether the token's grant was
// revoked: an error wrapping ErrUnavailable when it cannot tell.
func (is *issuer) checkRevoked(ctx context.Context, p *Principal) error {
	if is.delegated == nil || is.delegated.Revoked == nil {
		return nil
	}
	revoked, err := is.delegated.Revoked(ctx, p.Grant.TokenID)
	switch {
	case err != nil:
		return fmt.Errorf("%w: checking the token's grant: %w", ErrUnavailable, err)
	case revoked:
		return errors.New("the grant of this access token was revoked")
	}
	return nil
}

// delegationAllows reports whether p may perform action as far as its
// delegation goes: any action for a caller without one.
func (p *Principal) delegationAllows(action policies.Action) bool {
	return p.Grant == nil || slices.Contains(p.actions, action)
}
