package identity

import (
	"encoding/json"
	"net/http"

	"github.com/go-jose/go-jose/v4"

	"github.com/thiqa/thiqa/internal/problem"
)

// Scopes the provider knows.
const (
	ScopeOpenID  = "openid"
	ScopeProfile = "profile"
)

// clientAssertionAlgs are the JWS algorithms accepted in client assertions.
var clientAssertionAlgs = []jose.SignatureAlgorithm{jose.ES256, jose.ES384, jose.ES512, jose.PS256, jose.PS384, jose.PS512, jose.RS256, jose.EdDSA}

// discovery serves the OpenID Provider metadata (OpenID Connect Discovery 1.0 §3).
func (p *Provider) discovery(w http.ResponseWriter, _ *http.Request) {
	algs := make([]string, len(clientAssertionAlgs))
	for i, a := range clientAssertionAlgs {
		algs[i] = string(a)
	}
	meta := map[string]any{
		"issuer":                                           p.cfg.Issuer,
		"authorization_endpoint":                           p.endpoint(PathAuthorize),
		"token_endpoint":                                   p.endpoint(PathToken),
		"userinfo_endpoint":                                p.endpoint(PathUserinfo),
		"jwks_uri":                                         p.endpoint(PathJWKS),
		"response_types_supported":                         []string{"code"},
		"response_modes_supported":                         []string{"query"},
		"grant_types_supported":                            []string{"authorization_code"},
		"subject_types_supported":                          []string{"pairwise", "public"},
		"id_token_signing_alg_values_supported":            []string{string(p.alg)},
		"scopes_supported":                                 []string{ScopeOpenID, ScopeProfile},
		"claims_supported":                                 []string{"iss", "sub", "aud", "exp", "iat", "auth_time", "nonce", "acr", "amr", "given_name", "family_name", "name"},
		"token_endpoint_auth_methods_supported":            []string{AuthPrivateKeyJWT, AuthTLSClient},
		"token_endpoint_auth_signing_alg_values_supported": algs,
		"code_challenge_methods_supported":                 []string{"S256"},
		"acr_values_supported":                             p.acrValues(),
		"claims_parameter_supported":                       false,
		"request_parameter_supported":                      false,
		"request_uri_parameter_supported":                  false,
		"authorization_response_iss_parameter_supported":   true,
		"ui_locales_supported":                             []string{"ar", "en"},
	}
	w.Header().Set("Cache-Control", "public, max-age=300")
	writeJSON(w, http.StatusOK, meta)
}

// jwks serves the public token signing key (RFC 7517).
func (p *Provider) jwks(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Cache-Control", "public, max-age=300")
	writeJSON(w, http.StatusOK, jose.JSONWebKeySet{Keys: []jose.JSONWebKey{p.jwk}})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// oauthError is an error response of the token and userinfo endpoints
// (RFC 6749 §5.2, RFC 6750 §3).
type oauthError struct {
	Code        string `json:"error"`
	Description string `json:"error_description,omitempty"`
}

// OAuth 2.0 / OpenID Connect error codes.
const (
	errInvalidRequest          = "invalid_request"
	errInvalidClient           = "invalid_client"
	errInvalidGrant            = "invalid_grant"
	errUnauthorizedClient      = "unauthorized_client"
	errUnsupportedGrantType    = "unsupported_grant_type"
	errUnsupportedResponseType = "unsupported_response_type"
	errInvalidScope            = "invalid_scope"
	errAccessDenied            = "access_denied"
	errServerError             = "server_error"
	errInvalidToken            = "invalid_token"
	errLoginRequired           = "login_required"
	errRequestNotSupported     = "request_not_supported"
	errRequestURINotSupported  = "request_uri_not_supported"
)

// writeOAuthError answers the token endpoint (no-store; a 503 with a
// Retry-After).
func writeOAuthError(w http.ResponseWriter, status int, code, desc string) {
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Pragma", "no-cache")
	problem.RetryLater(w.Header(), status) // temporarily unable: when to try again
	writeJSON(w, status, oauthError{Code: code, Description: desc})
}

// acrValues lists the acr values logins get: the configured one (keys
// generated on the token) and the one of keys from a CSR, when it differs.
func (p *Provider) acrValues() []string {
	soft, _ := p.assurance(Citizen{}, MethodMTLS)
	if soft == p.cfg.ACR {
		return []string{p.cfg.ACR}
	}
	return []string{p.cfg.ACR, soft}
}
