package auth

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"

	"github.com/thiqa/thiqa/policies"
)

// maxTokenBytes bounds the bearer tokens looked at.
const maxTokenBytes = 16 << 10

// maxRoles bounds the roles claim.
const maxRoles = 16

// bearerToken extracts the token of an "Authorization: Bearer" header.
// present is false when the request has no Authorization header at all.
func bearerToken(r *http.Request) (token string, present bool, err error) {
	vals := r.Header.Values("Authorization")
	switch len(vals) {
	case 0:
		return "", false, nil
	case 1:
	default:
		return "", true, errors.New("more than one Authorization header")
	}
	scheme, tok, ok := strings.Cut(strings.TrimSpace(vals[0]), " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return "", true, errors.New("authorization scheme is not Bearer")
	}
	tok = strings.TrimSpace(tok)
	switch {
	case tok == "":
		return "", true, errors.New("empty bearer token")
	case len(tok) > maxTokenBytes:
		return "", true, fmt.Errorf("bearer token longer than %d bytes", maxTokenBytes)
	}
	// A JWS compact serialisation is base64url text in three dot-separated parts.
	for i := 0; i < len(tok); i++ {
		c := tok[i]
		if !(c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.') {
			return "", true, errors.New("bearer token is not a compact JWS")
		}
	}
	if strings.Count(tok, ".") != 2 {
		return "", true, errors.New("bearer token is not a compact JWS")
	}
	return tok, true, nil
}

// tokenClaims are the claims Thiqa reads from a bearer JWT: the
// registered ones, the roles, and those of a delegated access token.
type tokenClaims struct {
	jwt.Claims
	Roles []string `json:"roles"`
	Grant
}

// verifyToken checks a compact JWS bearer token and returns its principal.
func (a *Authenticator) verifyToken(ctx context.Context, raw string) (*Principal, error) {
	if len(a.allAlgs) == 0 {
		return nil, errors.New("no token issuer is configured")
	}
	now := a.now()
	hit, sum := a.tokens.get(raw, now)
	if hit != nil {
		keys, err := hit.issuer.source.lookup(ctx, hit.kid)
		if err == nil && stillPublished(keys, hit.key, hit.alg) {
			a.metrics.tokenCacheHits.Inc()
			p, err := hit.issuer.principal(hit.claims, now)
			if err != nil {
				return nil, identified(err)
			}
			a.setCivilCountry(p)
			return p, identified(hit.issuer.checkRevoked(ctx, p))
		}
		// The key is gone from the issuer's set: verify afresh.
	}
	tok, err := jwt.ParseSigned(raw, a.allAlgs)
	if err != nil {
		return nil, fmt.Errorf("malformed token: %w", err)
	}
	if len(tok.Headers) != 1 {
		return nil, errors.New("token must carry exactly one signature")
	}
	hdr := tok.Headers[0]
	typ, _ := hdr.ExtraHeaders[jose.HeaderType].(string)
	switch strings.ToLower(typ) {
	case "", "jwt", "at+jwt", "application/at+jwt":
	default:
		return nil, errors.New("token type is not JWT")
	}
	var unverified struct {
		Issuer string `json:"iss"`
	}
	if err := tok.UnsafeClaimsWithoutVerification(&unverified); err != nil {
		return nil, errors.New("malformed token claims")
	}
	is, ok := a.issuers[unverified.Issuer]
	if !ok {
		return nil, errors.New("token issuer is not trusted")
	}
	if t := strings.ToLower(typ); is.delegated != nil && t != "at+jwt" && t != "application/at+jwt" {
		return nil, errors.New("a delegated access token must have the type at+jwt (RFC 9068)")
	}
	alg := jose.SignatureAlgorithm(hdr.Algorithm)
	if !slices.Contains(is.algs, alg) {
		return nil, fmt.Errorf("algorithm %s is not allowed for this issuer", alg)
	}
	keys, err := is.source.lookup(ctx, hdr.KeyID)
	if err != nil {
		return nil, fmt.Errorf("issuer keys unavailable: %w", err)
	}
	var claims tokenClaims
	var verifiedBy crypto.PublicKey
	tried := 0
	for _, k := range keys {
		if !keyFits(k, alg) {
			continue
		}
		tried++
		if err := tok.Claims(k.Key, &claims); err == nil {
			verifiedBy = k.Key
			break
		}
	}
	switch {
	case tried == 0:
		return nil, errUnknownKey
	case verifiedBy == nil:
		return nil, errors.New("token signature does not verify")
	}
	// The signature verified: from here on a refusal is of a token this
	// deployment's issuer made, and names its subject (identified).
	p, err := is.principal(claims, now)
	if err != nil {
		return nil, identified(err)
	}
	a.setCivilCountry(p)
	a.tokens.put(sum, &cachedToken{issuer: is, kid: hdr.KeyID, alg: alg, key: verifiedBy, claims: claims}, now)
	return p, identified(is.checkRevoked(ctx, p))
}

// setCivilCountry marks a token's (or a page session's) citizen as one of the deployment's
// country: the trusted issuers name this deployment's citizens.
func (a *Authenticator) setCivilCountry(p *Principal) {
	if p.CivilNumber != "" {
		p.CivilCountry = a.country
	}
}

// keyFits reports whether k may verify a signature made with alg: the key
// type must match the algorithm family (ES256 with P-256 and so on), and a
// key that names its algorithm must name this one.
func keyFits(k jose.JSONWebKey, alg jose.SignatureAlgorithm) bool {
	if k.Algorithm != "" && k.Algorithm != string(alg) {
		return false
	}
	switch pub := k.Key.(type) {
	case *ecdsa.PublicKey:
		switch alg {
		case jose.ES256:
			return pub.Curve == elliptic.P256()
		case jose.ES384:
			return pub.Curve == elliptic.P384()
		case jose.ES512:
			return pub.Curve == elliptic.P521()
		}
	case *rsa.PublicKey:
		switch alg {
		case jose.RS256, jose.RS384, jose.RS512, jose.PS256, jose.PS384, jose.PS512:
			return true
		}
	case ed25519.PublicKey:
		return alg == jose.EdDSA
	}
	return false
}

// principal checks the verified claims and builds the caller's principal.
func (is *issuer) principal(c tokenClaims, now time.Time) (*Principal, error) {
	if c.Expiry == nil {
		return nil, errors.New("token has no expiry (exp)")
	}
	if c.Subject == "" {
		return nil, errors.New("token has no subject (sub)")
	}
	err := c.Claims.ValidateWithLeeway(jwt.Expected{
		Issuer:      is.cfg.Issuer,
		AnyAudience: jwt.Audience{is.cfg.Audience},
		Time:        now,
	}, is.skew)
	switch {
	case errors.Is(err, jwt.ErrExpired):
		return nil, ErrTokenExpired
	case errors.Is(err, jwt.ErrNotValidYet):
		return nil, errors.New("token not valid yet (nbf)")
	case errors.Is(err, jwt.ErrIssuedInTheFuture):
		return nil, errors.New("token issued in the future (iat)")
	case errors.Is(err, jwt.ErrInvalidAudience):
		return nil, errors.New("token audience does not include this service")
	case errors.Is(err, jwt.ErrInvalidIssuer):
		return nil, errors.New("token issuer mismatch")
	case err != nil:
		return nil, fmt.Errorf("token claims refused: %w", err)
	}
	if is.delegated != nil {
		return is.delegatedPrincipal(c)
	}
	if len(c.Roles) == 0 {
		return nil, errors.New("token carries no roles")
	}
	if len(c.Roles) > maxRoles {
		return nil, errors.New("token carries too many roles")
	}
	p := &Principal{Subject: c.Subject, Method: MethodJWT, Issuer: is.cfg.Issuer, Expires: c.Expiry.Time()}
	for _, name := range c.Roles {
		role, err := policies.ParseRole(name)
		if err != nil {
			return nil, errors.New("token carries an unknown role")
		}
		if is.roles != nil && !is.roles[role] {
			return nil, fmt.Errorf("issuer may not grant role %s", role)
		}
		if !slices.Contains(p.Roles, role) {
			p.Roles = append(p.Roles, role)
		}
	}
	if p.Has(policies.RoleAgency) {
		p.OrganizationIdentifier = c.Subject
	}
	if p.Has(policies.RoleCitizen) {
		p.CivilNumber = c.Subject
	}
	return p, nil
}
