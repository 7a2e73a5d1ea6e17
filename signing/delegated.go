package signing

// Delegated access: a citizen who logged in with the digital ID gave a
// signing application an OAuth2 access token for the signing service (CSC
// API v2 section 8.4). A "service" token acts as the citizen's own
// credentials on the signing routes (the PIN or a SAD still authorises each
// signature); a "credential" token carries the one-time authorisation of
// exact hashes with one credential, bound like a SAD: it signs those hashes
// once, through signatures/signHash or /api/v1/sign/complete, and nothing
// else. internal/auth verified the token and keeps it to the signing
// action; what it authorises is the principal's Grant.

import (
	"encoding/base64"
	"net/http"

	"github.com/thiqa/thiqa/internal/auth"
)

// GrantOf returns what the caller's delegated access token authorises, nil
// for a caller without one.
func GrantOf(r *http.Request) *auth.Grant {
	if pr, ok := auth.FromContext(r.Context()); ok {
		return pr.Grant
	}
	return nil
}

// CredentialGrant returns the authorisation a "credential" access token of
// the caller carries: the SAD value bound to it and what the token says it
// authorises (for CheckSAD before the SAD is spent). ok is false for a
// caller without such a token.
func CredentialGrant(r *http.Request) (sad string, authorised *SAD, ok bool) {
	g := GrantOf(r)
	if !g.HasScope(auth.ScopeCredential) {
		return "", nil, false
	}
	a := &SAD{CredentialID: g.CredentialID, HashAlg: g.HashAlgorithmOID, NumSignatures: g.NumSignatures}
	for _, h := range g.Hashes {
		b, err := base64.RawURLEncoding.DecodeString(h)
		if err != nil {
			continue // the issuer wrote it; a hash that does not decode matches nothing
		}
		a.Hashes = append(a.Hashes, b)
	}
	return g.SAD, a, true
}

// RefuseCredentialScope refuses an operation other than signing the
// authorised hashes to a "credential" access token.
func RefuseCredentialScope(r *http.Request) error {
	if _, _, ok := CredentialGrant(r); ok {
		return Refuse(ErrOutOfScope, "an access token with scope credential signs only the hashes it authorises, through signatures/signHash or /api/v1/sign/complete")
	}
	return nil
}
