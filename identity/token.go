package identity

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"

	"github.com/thiqa/thiqa/internal/outage"
)

// clientAssertionType is RFC 7523's client assertion type.
const clientAssertionType = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"

// clockSkew is the leeway allowed on client assertions' times.
const clockSkew = 30 * time.Second

// TokenResponse is the token endpoint's success answer (RFC 6749 §5.1,
// OpenID Connect Core §3.1.3.3).
type TokenResponse struct {
	AccessToken string `json:"access_token"`
	TokenType   string `json:"token_type"`
	ExpiresIn   int64  `json:"expires_in"`
	IDToken     string `json:"id_token"`
	Scope       string `json:"scope,omitempty"`
}

// tokenError is a refused token request.
type tokenError struct {
	status     int
	code, desc string
	// identified: the client's assertion verified with its registered
	// keys but is refused (expired, replayed, …); its refusal names the
	// client and is always recorded (tokenUnauthenticated).
	identified bool
	// certificate is the subject of the verified TLS client certificate
	// an identified refusal is of (tls_client_auth): its record names it.
	certificate string
}

func (e *tokenError) Error() string { return e.code + ": " + e.desc }

func badClient(desc string) *tokenError {
	return &tokenError{status: http.StatusUnauthorized, code: errInvalidClient, desc: desc}
}

// verifiedClientRefused is badClient for a client credential that
// verified: a client assertion whose signature verified with the client's
// registered keys (refused as expired, replayed, for another audience), a
// TLS client certificate whose chain the TLS layer verified but whose
// subject is not the client's. Its refusal names who presented it and is
// recorded every time.
func verifiedClientRefused(desc string) *tokenError {
	e := badClient(desc)
	e.identified = true
	return e
}

func badGrant(desc string) *tokenError {
	return &tokenError{status: http.StatusBadRequest, code: errInvalidGrant, desc: desc}
}

// tokenEndpoint is one of the provider's token endpoints: the OpenID
// Connect one and the CSC API's. Each redeems only the codes of its own
// authorization endpoint.
type tokenEndpoint struct {
	path   string // relative to the issuer
	kind   string // the AuthRequest.Kind of its codes
	action string // of its audit records
}

var (
	oidcTokens = tokenEndpoint{path: PathToken, action: "oidc.token"}
	cscTokens  = tokenEndpoint{path: PathCSCToken, kind: KindCSC, action: ActionCSCToken}
)

// token serves the OpenID Connect token endpoint: client authentication,
// the authorization code exchange, an access token and an ID token.
func (p *Provider) token(w http.ResponseWriter, r *http.Request) {
	c, g, now, accessExp, ok := p.redeem(w, r, oidcTokens)
	if !ok {
		return
	}
	resp, err := p.mintTokens(c, g, now, accessExp)
	if err != nil {
		p.mintFailed(w, r, oidcTokens, c, g, err)
		return
	}
	p.tokenIssued(w, r, oidcTokens, c, g, resp, nil)
}

// redeem authenticates the client at endpoint ep and redeems the code of
// the request. When ok is false it has answered, audited and counted the
// refusal; otherwise the grant is redeemed at now and its access tokens
// may live until accessExp.
func (p *Provider) redeem(w http.ResponseWriter, r *http.Request, ep tokenEndpoint) (c *Client, g *Grant, now, accessExp time.Time, ok bool) {
	ctx := r.Context()
	start := time.Now()
	defer func() { p.m.duration.WithLabelValues("token").Observe(time.Since(start).Seconds()) }()
	if p.tokenRateLimited(w, r, ep) {
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, maxFormBytes)
	if err := r.ParseForm(); err != nil {
		p.tokenUnauthenticated(w, r, ep, "", &tokenError{status: http.StatusBadRequest, code: errInvalidRequest, desc: "malformed form body"})
		return
	}
	form := r.PostForm
	for k, v := range form {
		if len(v) > 1 {
			p.tokenUnauthenticated(w, r, ep, "", &tokenError{status: http.StatusBadRequest, code: errInvalidRequest, desc: "parameter " + k + " repeated"})
			return
		}
	}
	c, terr := p.authenticateClient(ctx, r, form, p.endpoint(ep.path))
	if terr != nil {
		p.tokenUnauthenticated(w, r, ep, form.Get("client_id"), terr)
		return
	}
	if form.Get("grant_type") == "" {
		// RFC 6749 §5.2: a missing parameter is invalid_request.
		p.tokenFailed(w, r, ep, c.ID, nil, &tokenError{status: http.StatusBadRequest, code: errInvalidRequest, desc: "grant_type is required (grant_type=authorization_code)"})
		return
	}
	if gt := form.Get("grant_type"); gt != "authorization_code" {
		p.tokenFailed(w, r, ep, c.ID, nil, &tokenError{status: http.StatusBadRequest, code: errUnsupportedGrantType, desc: "only authorization_code is supported"})
		return
	}
	code, verifier := form.Get("code"), form.Get("code_verifier")
	if code == "" || len(code) > maxParamLen {
		p.tokenFailed(w, r, ep, c.ID, nil, &tokenError{status: http.StatusBadRequest, code: errInvalidRequest, desc: "code is required"})
		return
	}
	now = p.now()
	accessExp = now.Add(p.cfg.AccessTokenLifetime)
	g, err := p.cfg.Store.RedeemCode(ctx, hashSecret(code), now, accessExp)
	switch {
	case errors.Is(err, ErrCodeReused):
		p.tokenFailed(w, r, ep, c.ID, g, badGrant("authorization code already used; the tokens it issued are revoked"))
		return
	case errors.Is(err, ErrNotFound):
		p.tokenFailed(w, r, ep, c.ID, nil, badGrant("unknown authorization code"))
		return
	case err != nil:
		p.log.ErrorContext(ctx, "redeeming code", "err", err)
		p.tokenFailed(w, r, ep, c.ID, nil, &tokenError{status: http.StatusServiceUnavailable, code: errServerError, desc: "temporarily unable to redeem the code"})
		return
	}
	// The code is spent now whatever follows: a code presented by the wrong
	// client, for another redirect URI, with the wrong verifier or at the
	// other token endpoint is burnt.
	var bad *tokenError
	switch {
	case now.After(g.CodeExpires):
		bad = badGrant("authorization code expired")
	case g.Request.ClientID != c.ID:
		bad = badGrant("authorization code was issued to another client")
	case g.Request.Kind != ep.kind:
		bad = badGrant("authorization code was issued by another authorization endpoint than this token endpoint's")
	case form.Get("redirect_uri") != g.Request.RedirectURI:
		bad = badGrant("redirect_uri does not match the authorization request")
	case !pkceMatches(verifier, g.Request.CodeChallenge):
		bad = badGrant("code_verifier does not match the code_challenge")
	}
	if bad != nil {
		if err := p.cfg.Store.RevokeGrant(context.WithoutCancel(ctx), g.ID); err != nil {
			p.log.ErrorContext(ctx, "revoking grant", "err", err)
		}
		p.tokenFailed(w, r, ep, c.ID, g, bad)
		return
	}
	return c, g, now, accessExp, true
}

// mintFailed answers a redeemed grant whose tokens could not be made: the
// grant is revoked. When the signing key's token cannot be used for now
// (outage.Is) the answer is 503: the login can be started again later.
func (p *Provider) mintFailed(w http.ResponseWriter, r *http.Request, ep tokenEndpoint, c *Client, g *Grant, err error) {
	_ = p.cfg.Store.RevokeGrant(context.WithoutCancel(r.Context()), g.ID)
	p.log.ErrorContext(r.Context(), "signing tokens", "err", err)
	if outage.Is(err) {
		p.tokenFailed(w, r, ep, c.ID, g, &tokenError{status: http.StatusServiceUnavailable, code: errServerError, desc: "temporarily unable to sign the tokens; start the login again later"})
		return
	}
	p.tokenFailed(w, r, ep, c.ID, g, &tokenError{status: http.StatusInternalServerError, code: errServerError, desc: "unable to sign the tokens"})
}

// tokenIssued records the issuance of resp for grant g (details added to
// the record) and answers it; without the record the grant is revoked and
// nothing is answered but the failure.
func (p *Provider) tokenIssued(w http.ResponseWriter, r *http.Request, ep tokenEndpoint, c *Client, g *Grant, resp any, details map[string]any) {
	ctx := r.Context()
	d := map[string]any{"grant": g.ID, "citizen": g.Citizen.CivilNumber, "method": g.Method, "clientAuth": c.AuthMethod}
	for k, v := range details {
		d[k] = v
	}
	if err := p.audit(ctx, "client:"+c.ID, ep.action, c.ID, "success", d); err != nil {
		_ = p.cfg.Store.RevokeGrant(context.WithoutCancel(ctx), g.ID)
		p.tokenFailed(w, r, ep, c.ID, nil, &tokenError{status: http.StatusServiceUnavailable, code: errServerError, desc: "unable to record the token issuance"})
		return
	}
	p.m.tokens.WithLabelValues("success").Inc()
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Pragma", "no-cache")
	writeJSON(w, http.StatusOK, resp)
}

// tokenFailed answers a refused token request at ep, audits and counts it.
// A refusal whose record cannot be written is answered as a failure
// (503 server_error), as an issuance without its record is.
func (p *Provider) tokenFailed(w http.ResponseWriter, r *http.Request, ep tokenEndpoint, clientID string, g *Grant, e *tokenError) {
	p.tokenRefused(w, r, ep, clientID, g, e, false)
}

// tokenUnauthenticated is tokenFailed for a request whose client did not
// authenticate (a malformed form, a refused client authentication; clientID
// is what the request claims): anyone may send those, as many as the token
// rate limit lets through, so their records come out of the address's and
// the overall budget (tokenRefusals: 10 at once, then one
// every 10 s, then the first of a run; 50 at once and 10 a second over all
// addresses). Each is answered and counted as always. A client credential
// that verified but is refused (identified: an assertion signed with the
// client's key, a verified TLS client certificate of another subject) and
// a failure of the server are recorded every time.
func (p *Provider) tokenUnauthenticated(w http.ResponseWriter, r *http.Request, ep tokenEndpoint, clientID string, e *tokenError) {
	p.tokenRefused(w, r, ep, clientID, nil, e, !e.identified && e.code != errServerError)
}

// tokenRefused is tokenFailed; bounded takes the record from the budgets
// of refusals of clients that did not authenticate (budgetRecorded).
func (p *Provider) tokenRefused(w http.ResponseWriter, r *http.Request, ep tokenEndpoint, clientID string, g *Grant, e *tokenError, bounded bool) {
	details := map[string]any{"error": e.code, "reason": e.desc, "remote": r.RemoteAddr}
	if e.certificate != "" {
		details["certificate"] = e.certificate
	}
	if g != nil {
		details["grant"] = g.ID
	}
	outcome := "refused"
	if e.code == errServerError {
		outcome = "failure"
	}
	actor := ""
	if clientID != "" {
		actor = "client:" + clientID
	}
	record, undo := true, func() {}
	if bounded {
		record, undo = budgetRecorded(r, p.tokenRefusals, details,
			"further refused token requests of this address in a row are counted in thiqa_oidc_token_requests_total, not recorded")
	}
	if record {
		if err := p.audit(r.Context(), actor, ep.action, clientID, outcome, details); err != nil && e.code != errServerError {
			undo()
			e = &tokenError{status: http.StatusServiceUnavailable, code: errServerError, desc: descRefusalUnrecorded}
		}
	}
	p.m.tokens.WithLabelValues(e.code).Inc()
	// An invalid_client answer carries no Bearer challenge: that scheme is
	// for resources (RFC 6750). A client that tried HTTP Basic in the
	// Authorization header gets a challenge of that scheme, as RFC 6749
	// section 5.2 requires of the 401, though Basic is refused; the others
	// did not use HTTP authentication.
	if _, _, basic := r.BasicAuth(); basic && e.status == http.StatusUnauthorized {
		w.Header().Set("WWW-Authenticate", fmt.Sprintf(`Basic realm=%q`, p.cfg.Issuer))
	}
	writeOAuthError(w, e.status, e.code, e.desc)
}

// pkceMatches checks BASE64URL(SHA256(verifier)) == challenge (RFC 7636
// §4.6); the verifier must be 43 to 128 unreserved characters.
func pkceMatches(verifier, challenge string) bool {
	if len(verifier) < 43 || len(verifier) > 128 {
		return false
	}
	for _, ch := range verifier {
		switch {
		case ch >= 'A' && ch <= 'Z', ch >= 'a' && ch <= 'z', ch >= '0' && ch <= '9', ch == '-', ch == '.', ch == '_', ch == '~':
		default:
			return false
		}
	}
	sum := sha256.Sum256([]byte(verifier))
	got := base64.RawURLEncoding.EncodeToString(sum[:])
	return subtle.ConstantTimeCompare([]byte(got), []byte(challenge)) == 1
}

// authenticateClient authenticates the client at the token endpoint
// endpoint (its absolute URL) by private_key_jwt or tls_client_auth,
// whichever it registered.
func (p *Provider) authenticateClient(ctx context.Context, r *http.Request, form map[string][]string, endpoint string) (*Client, *tokenError) {
	get := func(k string) string {
		if v := form[k]; len(v) > 0 {
			return v[0]
		}
		return ""
	}
	if _, _, ok := r.BasicAuth(); ok {
		return nil, badClient("client_secret_basic is not supported; use private_key_jwt or tls_client_auth")
	}
	if get("client_secret") != "" {
		return nil, badClient("client secrets are not supported; use private_key_jwt or tls_client_auth")
	}
	assertion := get("client_assertion")
	clientID := get("client_id")
	if assertion != "" {
		if get("client_assertion_type") != clientAssertionType {
			return nil, badClient("client_assertion_type must be " + clientAssertionType)
		}
		return p.assertionClient(ctx, clientID, assertion, endpoint)
	}
	if clientID == "" || len(clientID) > maxParamLen {
		return nil, badClient("client authentication is required")
	}
	c, err := p.cfg.Store.Client(ctx, clientID)
	if err != nil {
		return nil, badClient("unknown client")
	}
	if c.AuthMethod != AuthTLSClient {
		return nil, badClient("this client authenticates with " + c.AuthMethod)
	}
	if r.TLS == nil || len(r.TLS.VerifiedChains) == 0 || len(r.TLS.PeerCertificates) == 0 {
		return nil, badClient("tls_client_auth needs a verified client certificate")
	}
	if subject := r.TLS.PeerCertificates[0].Subject.String(); subject != c.TLSSubject {
		// The TLS layer verified the certificate's chain and that the
		// caller holds its key: a real credential, presented for a client
		// it is not registered for, is recorded every time and named.
		e := verifiedClientRefused("client certificate subject does not match the registration")
		e.certificate = subject
		return nil, e
	}
	return c, nil
}

// assertionClaims are the claims of an RFC 7523 client assertion.
type assertionClaims struct {
	jwt.Claims
}

// assertionClient verifies a private_key_jwt client assertion: signature
// by a key of the client's registered JWKS, iss = sub = client_id, exp in
// the near future, jti never seen before, and aud this server: its issuer
// identifier (RFC 7523bis, FAPI 2.0: what mainstream libraries send) or the
// token endpoint called (RFC 7523), as the sole audience, so that an
// assertion made for several servers is refused.
func (p *Provider) assertionClient(ctx context.Context, clientID, assertion, endpoint string) (*Client, *tokenError) {
	if len(assertion) > 8<<10 {
		return nil, badClient("client assertion too large")
	}
	tok, err := jwt.ParseSigned(assertion, clientAssertionAlgs)
	if err != nil {
		return nil, badClient("client assertion is not a JWS with an accepted algorithm")
	}
	var unverified assertionClaims
	if err := tok.UnsafeClaimsWithoutVerification(&unverified); err != nil {
		return nil, badClient("client assertion claims unreadable")
	}
	iss := unverified.Issuer
	if iss == "" || (clientID != "" && clientID != iss) || unverified.Subject != iss {
		return nil, badClient("client assertion iss and sub must both be the client_id")
	}
	c, err := p.cfg.Store.Client(ctx, iss)
	if err != nil {
		return nil, badClient("unknown client")
	}
	if c.AuthMethod != AuthPrivateKeyJWT {
		return nil, badClient("this client authenticates with " + c.AuthMethod)
	}
	var set jose.JSONWebKeySet
	if err := json.Unmarshal(c.JWKS, &set); err != nil {
		return nil, &tokenError{status: http.StatusInternalServerError, code: errServerError, desc: "the client's registered key set is unreadable"}
	}
	var claims assertionClaims
	verified := false
	for _, h := range tok.Headers {
		for _, k := range keysFor(set, h.KeyID) {
			if k.Algorithm != "" && k.Algorithm != h.Algorithm {
				continue
			}
			if err := tok.Claims(k.Key, &claims); err == nil {
				verified = true
				break
			}
		}
	}
	if !verified {
		return nil, badClient("client assertion signature does not verify with the client's keys")
	}
	now := p.now()
	if err := claims.ValidateWithLeeway(jwt.Expected{
		Issuer: c.ID, Subject: c.ID, AnyAudience: jwt.Audience{p.cfg.Issuer, endpoint}, Time: now,
	}, clockSkew); err != nil {
		return nil, verifiedClientRefused("client assertion rejected: " + err.Error())
	}
	if len(claims.Audience) != 1 {
		return nil, verifiedClientRefused("client assertion aud must name this server alone (its issuer identifier or the token endpoint)")
	}
	if claims.Expiry == nil || claims.ID == "" || len(claims.ID) > 256 {
		return nil, verifiedClientRefused("client assertion must carry exp and jti")
	}
	exp := claims.Expiry.Time()
	if exp.Sub(now) > p.cfg.MaxAssertionLifetime {
		return nil, verifiedClientRefused(fmt.Sprintf("client assertion lives longer than %s", p.cfg.MaxAssertionLifetime))
	}
	if claims.IssuedAt != nil && claims.IssuedAt.Time().After(now.Add(clockSkew)) {
		return nil, verifiedClientRefused("client assertion issued in the future")
	}
	if err := p.cfg.Store.UseAssertion(ctx, c.ID, claims.ID, exp.Add(clockSkew)); err != nil {
		if errors.Is(err, ErrReplay) {
			return nil, verifiedClientRefused("client assertion replayed (jti already used)")
		}
		p.log.ErrorContext(ctx, "recording assertion jti", "err", err)
		return nil, &tokenError{status: http.StatusServiceUnavailable, code: errServerError, desc: "temporarily unable to check the client assertion"}
	}
	return c, nil
}

// keysFor returns the set's keys with that kid, or every signing key when
// the assertion names none.
func keysFor(set jose.JSONWebKeySet, kid string) []jose.JSONWebKey {
	if kid != "" {
		return set.Key(kid)
	}
	var out []jose.JSONWebKey
	for _, k := range set.Keys {
		if k.Use == "" || k.Use == "sig" {
			out = append(out, k)
		}
	}
	return out
}

// idClaims are the ID token's claims beyond the registered ones.
type idClaims struct {
	jwt.Claims
	Nonce      string   `json:"nonce,omitempty"`
	AuthTime   int64    `json:"auth_time"`
	ACR        string   `json:"acr,omitempty"`
	AMR        []string `json:"amr,omitempty"`
	AZP        string   `json:"azp,omitempty"`
	ATHash     string   `json:"at_hash,omitempty"`
	GivenName  string   `json:"given_name,omitempty"`
	FamilyName string   `json:"family_name,omitempty"`
	Name       string   `json:"name,omitempty"`
}

// atClaims are the access token's claims (RFC 9068).
type atClaims struct {
	jwt.Claims
	ClientID string `json:"client_id"`
	Scope    string `json:"scope"`
	AuthTime int64  `json:"auth_time"`
	ACR      string `json:"acr,omitempty"`
}

// mintTokens signs the access token and the ID token of a redeemed grant.
func (p *Provider) mintTokens(c *Client, g *Grant, now, accessExp time.Time) (*TokenResponse, error) {
	sub := p.subject(c, g.Citizen.CivilNumber)
	at, err := jwt.Signed(p.atSign).Claims(atClaims{
		Claims: jwt.Claims{
			Issuer: p.cfg.Issuer, Subject: sub, Audience: jwt.Audience{p.endpoint(PathUserinfo)},
			IssuedAt: jwt.NewNumericDate(now), NotBefore: jwt.NewNumericDate(now), Expiry: jwt.NewNumericDate(accessExp), ID: g.ID,
		},
		ClientID: c.ID, Scope: g.Request.Scope, AuthTime: g.AuthTime.Unix(), ACR: g.ACR,
	}).Serialize()
	if err != nil {
		return nil, fmt.Errorf("signing the access token: %w", err)
	}
	ah := sha256.Sum256([]byte(at))
	ic := idClaims{
		Claims: jwt.Claims{
			Issuer: p.cfg.Issuer, Subject: sub, Audience: jwt.Audience{c.ID},
			IssuedAt: jwt.NewNumericDate(now), Expiry: jwt.NewNumericDate(now.Add(p.cfg.IDTokenLifetime)),
		},
		Nonce: g.Request.Nonce, AuthTime: g.AuthTime.Unix(), ACR: g.ACR, AMR: g.AMR, AZP: c.ID,
		ATHash: base64.RawURLEncoding.EncodeToString(ah[:16]),
	}
	if hasScope(strings.Fields(g.Request.Scope), ScopeProfile) {
		ic.GivenName, ic.FamilyName, ic.Name = g.Citizen.GivenName, g.Citizen.FamilyName, g.Citizen.Name
	}
	idt, err := jwt.Signed(p.jsigner).Claims(ic).Serialize()
	if err != nil {
		return nil, fmt.Errorf("signing the ID token: %w", err)
	}
	return &TokenResponse{
		AccessToken: at, TokenType: "Bearer", ExpiresIn: int64(accessExp.Sub(now).Seconds()), IDToken: idt, Scope: g.Request.Scope,
	}, nil
}

// maxUserinfoForm bounds the form body of a userinfo POST: an access
// token is about a kilobyte.
const maxUserinfoForm = 16 << 10

// userinfoToken returns the access token of a userinfo request: from the
// Authorization header (RFC 6750 section 2.1; the scheme is
// case-insensitive, RFC 9110 section 11.1), or from the access_token
// parameter of an application/x-www-form-urlencoded POST body (section
// 2.2; OpenID Connect Core section 5.3.1 lets userinfo take POST). Never
// from the query string. "" when there is none. desc is set when the
// request is malformed (invalid_request, 400): a token in both the header
// and the body (section 2: one method per request), more than one
// access_token, or a form body that cannot be read.
func userinfoToken(w http.ResponseWriter, r *http.Request) (token, desc string) {
	authz := r.Header.Get("Authorization")
	if scheme, raw, _ := strings.Cut(authz, " "); strings.EqualFold(scheme, "Bearer") {
		token = strings.TrimSpace(raw)
	}
	if r.Method != http.MethodPost {
		return token, ""
	}
	if mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type")); err != nil || mt != "application/x-www-form-urlencoded" {
		return token, ""
	}
	// The body alone: r.ParseForm would read the query string too, and
	// fail the request on a query that does not parse.
	const bad = "the form body cannot be read (at most 16 KiB, application/x-www-form-urlencoded)"
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxUserinfoForm))
	if err != nil {
		return "", bad
	}
	form, err := url.ParseQuery(string(body))
	if err != nil {
		return "", bad
	}
	vals, ok := form["access_token"]
	switch {
	case !ok:
		return token, ""
	case len(vals) > 1:
		return "", "more than one access_token in the body"
	case authz != "":
		return "", "the access token is sent in both the Authorization header and the body: use one (RFC 6750 section 2)"
	}
	return strings.TrimSpace(vals[0]), ""
}

// ActionUserinfo is the audit action of a refused userinfo request: the
// access token missing, malformed, forged, expired, unknown or revoked (a
// revoked token is one whose code was replayed: a sign of theft). A
// served request is not recorded: the token record (oidc.token) already
// names the client, the citizen and the grant the claims come from.
const ActionUserinfo = "oidc.userinfo"

// userinfo returns the claims the access token's scope allows (OpenID
// Connect Core §5.3). The token, from the Authorization header or a form
// body (userinfoToken), must verify, be unexpired, and its grant must not
// be revoked. Each refusal of a token whose signature verified is
// recorded (ActionUserinfo) before it is answered; the others (no token, a
// malformed or forged one: anyone may send those) within the budgets of
// userinfoRecorded. One that cannot be recorded is answered 503.
func (p *Provider) userinfo(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	// refuse records and answers a refusal with the WWW-Authenticate
	// challenge; c is the access token's claims once its signature
	// verified (nil before: nothing in it is known).
	refuse := func(challenge, code, desc string, c *atClaims) {
		actor, object := "", ""
		details := map[string]any{"error": code, "reason": desc, "remote": r.RemoteAddr}
		if c != nil {
			actor, object = "client:"+c.ClientID, c.ClientID
			details["grant"] = c.ID
		}
		// Past the address's budget of recorded refusals only the
		// first of each run is recorded (userinfoRecorded): the endpoint
		// is public, and a record per forged token would let anyone fill
		// the audit log. A token whose signature verified (c) but is
		// refused (expired, revoked) was issued here and names its client
		// and grant: a revoked one in use may be stolen, so its refusal
		// is recorded every time, as the API's 401s of such tokens are.
		// Every one is answered as its own refusal.
		record, undo := true, func() {}
		if c == nil {
			record, undo = p.userinfoRecorded(r, details)
		}
		if record {
			if err := p.audit(ctx, actor, ActionUserinfo, object, "refused", details); err != nil {
				undo() // the run's next refusal is recorded instead
				writeOAuthError(w, http.StatusServiceUnavailable, errServerError, descRefusalUnrecorded)
				return
			}
		}
		w.Header().Set("WWW-Authenticate", challenge)
		status := http.StatusUnauthorized
		if code == errInvalidRequest {
			status = http.StatusBadRequest
		}
		writeOAuthError(w, status, code, desc)
	}
	fail := func(code, desc string, c *atClaims) {
		refuse(fmt.Sprintf(`Bearer error=%q, error_description=%q`, code, desc), code, desc, c)
	}
	raw, desc := userinfoToken(w, r)
	if desc != "" {
		fail(errInvalidRequest, desc, nil)
		return
	}
	if raw == "" {
		refuse(`Bearer`, errInvalidToken, "a bearer access token is required", nil)
		return
	}
	tok, err := jwt.ParseSigned(raw, []jose.SignatureAlgorithm{p.alg})
	if err != nil || len(tok.Headers) != 1 || tok.Headers[0].ExtraHeaders[jose.HeaderType] != "at+jwt" {
		fail(errInvalidToken, "malformed access token", nil)
		return
	}
	var c atClaims
	if err := tok.Claims(p.jwk.Key, &c); err != nil {
		fail(errInvalidToken, "access token signature does not verify", nil)
		return
	}
	if err := c.ValidateWithLeeway(jwt.Expected{Issuer: p.cfg.Issuer, AnyAudience: jwt.Audience{p.endpoint(PathUserinfo)}, Time: p.now()}, 0); err != nil {
		fail(errInvalidToken, "access token expired or not for this service", &c)
		return
	}
	g, err := p.cfg.Store.Grant(ctx, c.ID)
	if err != nil {
		if !errors.Is(err, ErrNotFound) {
			p.log.ErrorContext(ctx, "reading grant", "err", err)
		}
		fail(errInvalidToken, "unknown access token", &c)
		return
	}
	if g.Revoked || !g.Redeemed {
		fail(errInvalidToken, "access token revoked", &c)
		return
	}
	out := map[string]any{"sub": c.Subject}
	if hasScope(strings.Fields(g.Request.Scope), ScopeProfile) {
		for k, v := range map[string]string{"given_name": g.Citizen.GivenName, "family_name": g.Citizen.FamilyName, "name": g.Citizen.Name} {
			if v != "" {
				out[k] = v
			}
		}
	}
	w.Header().Set("Cache-Control", "no-store")
	writeJSON(w, http.StatusOK, out)
}
