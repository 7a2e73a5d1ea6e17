package portal

import (
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"

	"github.com/thiqa/thiqa/internal/audit"
	"github.com/thiqa/thiqa/internal/auth"
	"github.com/thiqa/thiqa/policies"
)

// The provider's endpoints, on this server.
const (
	pathAuthorize = "/oidc/authorize"
	pathToken     = "/oidc/token"
	pathJWKS      = "/oidc/jwks"
)

// loginLifetime bounds the time between leaving for the provider and
// coming back.
const loginLifetime = 10 * time.Minute

func jsonUnmarshal(b []byte, v any) error { return json.Unmarshal(b, v) }

// myLogin sends the browser to the provider with a fresh state, nonce and
// PKCE verifier kept in its session.
func (p *Portal) myLogin(w http.ResponseWriter, r *http.Request, v *view) {
	c := p.o.OIDC
	if c == nil {
		v.fail(http.StatusServiceUnavailable, "err.login_unavailable")
		return
	}
	pl := &pendingLogin{state: randomToken(), nonce: randomToken(), verifier: randomToken() + randomToken(), started: p.o.Now()}
	se := v.ensure()
	p.ses.locked(func() { se.oidc = pl })
	sum := sha256.Sum256([]byte(pl.verifier))
	q := url.Values{
		"response_type": {"code"}, "client_id": {c.ClientID}, "redirect_uri": {c.RedirectURI},
		"scope": {"openid profile"}, "state": {pl.state}, "nonce": {pl.nonce},
		"code_challenge": {base64.RawURLEncoding.EncodeToString(sum[:])}, "code_challenge_method": {"S256"},
		"ui_locales": {v.lang},
	}
	v.redirect(pathAuthorize + "?" + q.Encode())
}

// myCallback receives the provider's answer, redeems the code in process
// with the portal's client assertion and the PKCE verifier, checks the
// ID token and binds a fresh session to the citizen.
func (p *Portal) myCallback(w http.ResponseWriter, r *http.Request, v *view) {
	c := p.o.OIDC
	if c == nil {
		v.fail(http.StatusServiceUnavailable, "err.login_unavailable")
		return
	}
	q := r.URL.Query()
	var pl *pendingLogin
	if v.se != nil {
		p.ses.locked(func() { pl, v.se.oidc = v.se.oidc, nil })
	}
	if pl == nil || subtle.ConstantTimeCompare([]byte(q.Get("state")), []byte(pl.state)) != 1 {
		v.failRecorded(p.auditRefusal(r, v.se, "web.login", "sign-in answer without a matching state"), http.StatusBadRequest, "err.login_state")
		return
	}
	if p.o.Now().Sub(pl.started) > loginLifetime {
		v.fail(http.StatusBadRequest, "err.login_state")
		return
	}
	if subtle.ConstantTimeCompare([]byte(q.Get("iss")), []byte(c.Issuer)) != 1 {
		// RFC 9207: the provider names itself in every authorization
		// response (its metadata says so); an answer naming another
		// issuer, or none, is not its answer (a mix-up), and its code is
		// not sent to the provider's token endpoint.
		v.failRecorded(p.auditRefusal(r, v.se, "web.login", "sign-in answer whose iss is not the provider's"), http.StatusForbidden, "err.login_refused")
		return
	}
	if e := q.Get("error"); e != "" {
		v.fail(http.StatusForbidden, "err.login_refused")
		return
	}
	assertion, err := c.assertion(strings.TrimSuffix(c.Issuer, "/")+pathToken, p.o.Now())
	if err != nil {
		p.log.ErrorContext(r.Context(), "signing the client assertion", "err", err)
		v.fail(http.StatusServiceUnavailable, "err.unavailable")
		return
	}
	form := url.Values{
		"grant_type": {"authorization_code"}, "code": {q.Get("code")}, "redirect_uri": {c.RedirectURI},
		"code_verifier": {pl.verifier}, "client_id": {c.ClientID},
		"client_assertion_type": {"urn:ietf:params:oauth:client-assertion-type:jwt-bearer"}, "client_assertion": {assertion},
	}
	ans, err := v.call(nil, http.MethodPost, pathToken, "application/x-www-form-urlencoded", strings.NewReader(form.Encode()), nil, 1<<20)
	if err != nil || !ans.ok() {
		detail := ""
		if ans != nil {
			detail = string(ans.body)
		}
		p.log.WarnContext(r.Context(), "redeeming the authorization code", "err", err, "answer", detail)
		v.fail(http.StatusForbidden, "err.login_refused")
		return
	}
	var tr struct {
		IDToken string `json:"id_token"`
	}
	if err := json.Unmarshal(ans.body, &tr); err != nil || tr.IDToken == "" {
		v.fail(http.StatusBadGateway, "err.login_refused")
		return
	}
	cl, err := p.checkIDToken(v, tr.IDToken, pl.nonce)
	if err != nil {
		p.log.WarnContext(r.Context(), "ID token refused", "err", err)
		v.failRecorded(p.auditRefusal(r, v.se, "web.login", "ID token refused: "+err.Error()), http.StatusForbidden, "err.login_refused")
		return
	}
	who := &auth.Principal{Subject: cl.Subject, CivilNumber: cl.Subject, Roles: []policies.Role{policies.RoleCitizen}, Method: "oidc", Issuer: c.Issuer}
	// The sign-in is recorded before its session exists: without the
	// record there is no session.
	if _, err := p.o.Audit.Append(r.Context(), audit.Entry{Actor: who.Subject, Action: "web.login", Object: "/my/", Outcome: audit.OutcomeSuccess,
		Details: map[string]any{"kind": "citizen", "acr": cl.ACR, "amr": cl.AMR, "remote": r.RemoteAddr}}); err != nil {
		p.log.ErrorContext(r.Context(), "audit append failed", "err", err)
		v.fail(http.StatusInternalServerError, "err.unavailable")
		return
	}
	se, value := p.ses.login(v.se, who, "citizen")
	p.ses.locked(func() { se.name = cl.Name })
	setCookie(w, p.o.Secure, value)
	v.redirect("/my/")
}

// idClaims are the ID token claims the portal reads.
type idClaims struct {
	jwt.Claims
	Nonce string   `json:"nonce"`
	AZP   string   `json:"azp"`
	ACR   string   `json:"acr"`
	AMR   []string `json:"amr"`
	Name  string   `json:"name"`
}

// checkIDToken verifies the ID token with the provider's published keys
// (read in process) and checks issuer, audience, expiry and nonce.
func (p *Portal) checkIDToken(v *view, raw, nonce string) (*idClaims, error) {
	c := p.o.OIDC
	tok, err := jwt.ParseSigned(raw, []jose.SignatureAlgorithm{jose.ES256, jose.ES384, jose.RS256, jose.PS256})
	if err != nil || len(tok.Headers) != 1 {
		return nil, errors.New("malformed ID token")
	}
	ans, err := v.call(nil, http.MethodGet, pathJWKS, "", nil, nil, 1<<20)
	if err != nil || !ans.ok() {
		return nil, fmt.Errorf("reading the provider's keys: %v", err)
	}
	var set jose.JSONWebKeySet
	if err := json.Unmarshal(ans.body, &set); err != nil {
		return nil, fmt.Errorf("provider keys: %w", err)
	}
	var cl idClaims
	verified := false
	for _, k := range set.Key(tok.Headers[0].KeyID) {
		if err := tok.Claims(k.Key, &cl); err == nil {
			verified = true
			break
		}
	}
	if !verified {
		return nil, errors.New("ID token signature does not verify with the provider's keys")
	}
	if err := cl.ValidateWithLeeway(jwt.Expected{Issuer: c.Issuer, AnyAudience: jwt.Audience{c.ClientID}, Time: p.o.Now()}, time.Minute); err != nil {
		return nil, err
	}
	if subtle.ConstantTimeCompare([]byte(cl.Nonce), []byte(nonce)) != 1 {
		return nil, errors.New("nonce does not match")
	}
	if cl.AZP != "" && cl.AZP != c.ClientID {
		return nil, errors.New("azp names another client")
	}
	// A civil number is digits alone (policies.CheckCallerSubject); a
	// pairwise subject is base64url and may hold digits too.
	if policies.CheckCallerSubject(policies.RoleCitizen, cl.Subject) != nil {
		return nil, errors.New("the subject is not a civil number (the portal's client must be registered with the civil number)")
	}
	return &cl, nil
}

// logout ends the session (POST, with CSRF) and returns to where the
// person signed in.
func (p *Portal) logout(w http.ResponseWriter, r *http.Request, v *view) {
	if v.se != nil {
		p.dropHeld(v.se)
		p.ses.drop(v.se)
	}
	clearCookie(w, p.o.Secure)
	if strings.HasPrefix(r.URL.Path, "/ra/") {
		v.redirect("/ra/")
		return
	}
	v.redirect("/my/")
}

// assertion signs a client assertion (RFC 7523) for audience: issuer and
// subject the client, one minute, a fresh jti.
func (c *OIDCClient) assertion(audience string, now time.Time) (string, error) {
	algs := c.Key.Algs()
	if len(algs) == 0 {
		return "", errors.New("the client key names no algorithm")
	}
	s, err := jose.NewSigner(jose.SigningKey{Algorithm: algs[0], Key: c.Key}, (&jose.SignerOptions{}).WithType("JWT"))
	if err != nil {
		return "", err
	}
	return jwt.Signed(s).Claims(jwt.Claims{Issuer: c.ClientID, Subject: c.ClientID, Audience: jwt.Audience{audience},
		IssuedAt: jwt.NewNumericDate(now), NotBefore: jwt.NewNumericDate(now), Expiry: jwt.NewNumericDate(now.Add(time.Minute)), ID: randomToken()}).Serialize()
}
