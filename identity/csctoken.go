package identity

// The CSC API v2 token endpoint (section 8.4.3): the code of a CSC
// authorization becomes an access token of the signing service. It is an
// RFC 9068 JWT signed with the provider's key: iss the issuer, sub the
// citizen's civil number (the signing service knows its credentials by
// it), aud the signing service, jti the grant, and the grant's client and
// scope (internal/auth.Grant). A scope credential token also names the
// credential and hashes and carries the one-time SAD the signing service
// recorded for exactly them; the resource spends it with the first
// signature.

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/go-jose/go-jose/v4/jwt"

	"github.com/thiqa/thiqa/internal/auth"
)

// CSCTokenResponse is the CSC token endpoint's answer (CSC API v2 section
// 8.4.3; RFC 6749 section 5.1).
type CSCTokenResponse struct {
	AccessToken string `json:"access_token"`
	TokenType   string `json:"token_type"`
	ExpiresIn   int64  `json:"expires_in"`
	Scope       string `json:"scope"`
	// CredentialID names the credential a scope credential token
	// authorises.
	CredentialID string `json:"credentialID,omitempty"`
}

// cscClaims are the claims of a CSC access token.
type cscClaims struct {
	jwt.Claims
	auth.Grant
	AuthTime int64  `json:"auth_time"`
	ACR      string `json:"acr,omitempty"`
}

// cscToken serves the CSC token endpoint.
func (p *Provider) cscToken(w http.ResponseWriter, r *http.Request) {
	c, g, now, exp, ok := p.redeem(w, r, cscTokens)
	if !ok {
		return
	}
	ctx := r.Context()
	grant := auth.Grant{ClientID: c.ID, Scope: g.Request.Scope}
	details := map[string]any{"scope": g.Request.Scope}
	if cr := g.Request.Credential; cr != nil {
		sad, sadExp, err := p.cfg.Signing.Credentials.Activate(ctx, g.Citizen.CivilNumber, c.ID, cr)
		if err != nil {
			_ = p.cfg.Store.RevokeGrant(context.WithoutCancel(ctx), g.ID)
			terr := &tokenError{status: http.StatusServiceUnavailable, code: errServerError, desc: "temporarily unable to record the authorisation"}
			if errors.Is(err, ErrCredentialUnusable) {
				terr = badGrant("the credential can no longer be used")
			} else {
				p.log.ErrorContext(ctx, "activating the credential", "err", err)
			}
			p.tokenFailed(w, r, cscTokens, c.ID, g, terr)
			return
		}
		if sadExp.Before(exp) {
			exp = sadExp
		}
		grant.CredentialID, grant.NumSignatures, grant.HashAlgorithmOID, grant.SAD = cr.CredentialID, cr.NumSignatures, cr.HashAlgorithmOID, sad
		for _, h := range cr.Hashes {
			grant.Hashes = append(grant.Hashes, base64.RawURLEncoding.EncodeToString(h))
		}
		details["credential"], details["hashes"], details["expiresAt"] = cr.CredentialID, len(cr.Hashes), exp.UTC()
	}
	at, err := jwt.Signed(p.atSign).Claims(cscClaims{
		Claims: jwt.Claims{
			Issuer: p.cfg.Issuer, Subject: g.Citizen.CivilNumber, Audience: jwt.Audience{p.cfg.Signing.Audience},
			IssuedAt: jwt.NewNumericDate(now), NotBefore: jwt.NewNumericDate(now), Expiry: jwt.NewNumericDate(exp), ID: g.ID,
		},
		Grant: grant, AuthTime: g.AuthTime.Unix(), ACR: g.ACR,
	}).Serialize()
	if err != nil {
		p.mintFailed(w, r, cscTokens, c, g, fmt.Errorf("signing the access token: %w", err))
		return
	}
	p.tokenIssued(w, r, cscTokens, c, g, CSCTokenResponse{
		AccessToken: at, TokenType: "Bearer", ExpiresIn: int64(exp.Sub(now) / time.Second), Scope: g.Request.Scope, CredentialID: grant.CredentialID,
	}, details)
}
