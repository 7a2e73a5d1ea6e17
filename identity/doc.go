// Package identity is Thiqa's digital-ID service: an OpenID Connect provider
// (authorization code flow with PKCE S256 only) that turns "this citizen
// proved possession of the key in their citizen-auth certificate" into a
// standard login any government portal understands.
//
// A citizen proves possession in one of two ways at /oidc/authorize:
//
//   - mutual TLS with the citizen's certificate (an ID card in a browser);
//   - remote "mobile ID": the citizen's authentication key lives on the
//     service's token; the citizen enters a civil number, sees a
//     verification code, and approves on the phone with the same code and a
//     PIN; the provider then signs a fresh challenge with that key and checks
//     the signature against the certificate. The phone side (listing the
//     pending logins, approving one) is served only to the citizen
//     authenticated with their own credentials (Config.PhoneAuth and
//     Config.Caller): it never trusts a civil number the request names, and
//     a citizen can neither see nor approve another citizen's logins.
//     Only a few logins may await approval for one civil number at once
//     (Config.MaxPendingLogins), so that nobody can flood a citizen's
//     phone with requests. With number matching (Config.NumberMatching,
//     identity.mobile.numberMatching) the phone's list leaves the codes
//     out and the citizen types the browser's code to approve: a login
//     someone else started with the citizen's number cannot be approved
//     by mistake, and a wrong code cancels it (one try per login).
//
// One client address may start only so many mobile logins, and send only
// so many requests to the token endpoints, and have only so many userinfo
// requests refused (Config.LoginRate, TokenRate;
// internal/ratelimit per client IP as internal/clientip resolves it):
// past them 429 with Retry-After, the first refusal of each run audited,
// every one counted.
//
// Either way the certificate's status is asked of the CA's own data at that
// moment (StatusChecker): a revoked, expired or unknown certificate is
// refused with access_denied.
//
// The same login opens the signing service: with Config.Signing the
// provider is also the OAuth 2.0 authorization server of the CSC API v2
// (section 8.4, PathCSCAuthorize and PathCSCToken). A signing application,
// registered like a portal, asks for scope service (access to the CSC API
// and /api/v1/sign* for the citizen) or scope credential (the signature of
// exact hashes with one credential: the citizen also enters the signing
// PIN, which the signing service checks, and the access token carries the
// one-time SAD of those hashes). Its access tokens are RFC 9068 JWTs for
// the signing service's audience, trusted by internal/auth as delegated
// tokens only.
//
// Clients authenticate at the token endpoints with private_key_jwt
// (RFC 7523: single-use jti, short lifetime, aud the issuer identifier or
// the token endpoint called, alone) or tls_client_auth (RFC 8705). Authorization codes are single-use,
// short-lived and bound to client, redirect URI and PKCE challenge; a reused
// code revokes what it issued. ID tokens and access tokens are JWS signed
// through a crypto.Signer (a key on the token in production). The subject is
// pairwise per sector unless the client may see the civil number.
//
// Operators register portals (NewClient, RegisterClient, and ClientAPI
// for POST /api/v1/oidc/clients behind the guard cmd/thiqa passes) and
// enrol citizens' mobile IDs (EnrolMobileID); `thiqa oidc` and `thiqa
// serve` only parse and wire.
//
// The package keeps no state of its own: clients, logins, grants and used
// assertion IDs live in a Store (package store implements it), so any
// number of instances may serve behind a load balancer.
package identity
