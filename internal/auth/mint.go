package auth

import (
	"crypto"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"

	"github.com/thiqa/thiqa/internal/josesigner"
	"github.com/thiqa/thiqa/policies"
)

// MaxMintTTL is the longest lifetime MintToken gives a token.
const MaxMintTTL = 30 * 24 * time.Hour

// MintClaims describe a token to mint.
type MintClaims struct {
	// Issuer and Audience become "iss" and "aud"; DevIssuer and DevAudience when empty.
	Issuer, Audience string
	// Subject is an agency's organizationIdentifier or a citizen's civil number.
	Subject string
	// Roles become the "roles" claim; at least one.
	Roles []policies.Role
	// TTL is the token's lifetime; one hour when zero, at most MaxMintTTL.
	TTL time.Duration
	// Now is the issuing time; time.Now() when zero.
	Now time.Time
}

// MintToken signs a JWT (compact JWS) for c with s, for example a
// josesigner.Signer over the development issuer's key on the token. The
// token carries iss, sub, aud, roles, a random jti, iat, nbf and exp, and the
// signer's key ID in its "kid" header.
func MintToken(s jose.OpaqueSigner, c MintClaims) (string, error) {
	if s == nil {
		return "", errors.New("auth: minting: nil signer")
	}
	if c.Subject == "" {
		return "", errors.New("auth: minting: subject is required")
	}
	if len(c.Roles) == 0 {
		return "", errors.New("auth: minting: at least one role is required")
	}
	roles := make([]string, len(c.Roles))
	for i, r := range c.Roles {
		if _, err := policies.ParseRole(string(r)); err != nil {
			return "", fmt.Errorf("auth: minting: %w", err)
		}
		roles[i] = string(r)
	}
	if c.TTL == 0 {
		c.TTL = time.Hour
	}
	if c.TTL < 0 || c.TTL > MaxMintTTL {
		return "", fmt.Errorf("auth: minting: ttl %s out of range (0, %s]", c.TTL, MaxMintTTL)
	}
	if c.Issuer == "" {
		c.Issuer = DevIssuer
	}
	if c.Audience == "" {
		c.Audience = DevAudience
	}
	if c.Now.IsZero() {
		c.Now = time.Now()
	}
	algs := s.Algs()
	if len(algs) == 0 {
		return "", errors.New("auth: minting: signer offers no algorithm")
	}
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: algs[0], Key: s},
		(&jose.SignerOptions{}).WithType("JWT"))
	if err != nil {
		return "", fmt.Errorf("auth: minting: %w", err)
	}
	var id [16]byte
	if _, err := rand.Read(id[:]); err != nil {
		return "", fmt.Errorf("auth: minting: %w", err)
	}
	now := c.Now.Truncate(time.Second)
	claims := tokenClaims{
		Claims: jwt.Claims{
			Issuer:    c.Issuer,
			Subject:   c.Subject,
			Audience:  jwt.Audience{c.Audience},
			Expiry:    jwt.NewNumericDate(now.Add(c.TTL)),
			NotBefore: jwt.NewNumericDate(now),
			IssuedAt:  jwt.NewNumericDate(now),
			ID:        base64.RawURLEncoding.EncodeToString(id[:]),
		},
		Roles: roles,
	}
	tok, err := jwt.Signed(signer).Claims(claims).Serialize()
	if err != nil {
		return "", fmt.Errorf("auth: minting: signing token: %w", err)
	}
	return tok, nil
}

// MintDevToken signs a development API token for subject and role, valid
// for ttl from now, with key, the development issuer's key (DevIssuer,
// DevAudience): `thiqa token` and the load generators.
func MintDevToken(key crypto.Signer, subject string, role policies.Role, ttl time.Duration, now time.Time) (string, error) {
	js, err := josesigner.New(key, "")
	if err != nil {
		return "", fmt.Errorf("development issuer key: %w", err)
	}
	token, err := MintToken(js, MintClaims{Issuer: DevIssuer, Audience: DevAudience, Subject: subject, Roles: []policies.Role{role}, TTL: ttl, Now: now})
	if err != nil {
		return "", fmt.Errorf("minting token: %w", err)
	}
	return token, nil
}

// PublishDevIssuerKey writes the public key of key, the development
// issuer's, as the JWK Set file at path that DevIssuerConfig trusts
// (`thiqa init`).
func PublishDevIssuerKey(path string, key crypto.Signer) error {
	js, err := josesigner.New(key, "")
	if err != nil {
		return fmt.Errorf("development issuer key: %w", err)
	}
	if err := WriteJWKS(path, *js.Public()); err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	return nil
}
