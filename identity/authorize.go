package identity

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"errors"
	"fmt"
	"hash/fnv"
	"math/big"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/thiqa/thiqa/internal/auth"
	"github.com/thiqa/thiqa/internal/clientip"
)

// authParams are the authorization request parameters carried through the
// login form.
var authParams = []string{"client_id", "redirect_uri", "response_type", "scope", "state", "nonce", "code_challenge", "code_challenge_method", "response_mode", "prompt", "request", "request_uri", "acr_values", "ui_locales", "login_hint", "max_age"}

// Bounds on request parameters.
const (
	maxParamLen  = 512
	maxFormBytes = 16 << 10
)

// authError is a refused authorization request. redirect says whether the
// error may be sent to the client's redirect URI (only once client and
// redirect URI are known to match, RFC 6749 §4.1.2.1).
type authError struct {
	code, desc string
	redirect   bool
}

// requestClient finds the client of an authorization request and checks
// its redirect URI: until both are known good, an error may not be sent to
// the redirect URI (RFC 6749 section 4.1.2.1).
func (p *Provider) requestClient(ctx context.Context, form url.Values) (*Client, *authError) {
	if len(form["client_id"]) > 1 || len(form["redirect_uri"]) > 1 {
		return nil, &authError{code: errInvalidRequest, desc: "parameter client_id or redirect_uri repeated"}
	}
	clientID := form.Get("client_id")
	if clientID == "" || len(clientID) > maxParamLen {
		return nil, &authError{code: errInvalidRequest, desc: "client_id is missing or invalid"}
	}
	c, err := p.cfg.Store.Client(ctx, clientID)
	if errors.Is(err, ErrNotFound) {
		return nil, &authError{code: errInvalidRequest, desc: "unknown client_id"}
	}
	if err != nil {
		p.log.ErrorContext(ctx, "looking up client", "client", clientID, "err", err)
		return nil, &authError{code: errServerError, desc: "temporarily unable to look up the client"}
	}
	if ru := form.Get("redirect_uri"); ru == "" || !registered(c, ru) {
		return c, &authError{code: errInvalidRequest, desc: "redirect_uri is missing or not registered for this client"}
	}
	return c, nil
}

// parseAuthRequest validates an authorization request (OpenID Connect Core
// §3.1.2.1, RFC 7636).
func (p *Provider) parseAuthRequest(ctx context.Context, form url.Values) (*Client, *AuthRequest, *authError) {
	c, aerr := p.requestClient(ctx, form)
	if aerr != nil {
		return c, nil, aerr
	}
	req := &AuthRequest{ClientID: c.ID, RedirectURI: form.Get("redirect_uri"), State: form.Get("state"), Nonce: form.Get("nonce"), CodeChallenge: form.Get("code_challenge")}
	fail := func(code, desc string) (*Client, *AuthRequest, *authError) {
		return c, req, &authError{code: code, desc: desc, redirect: true}
	}
	for _, k := range authParams {
		if len(form[k]) > 1 {
			return fail(errInvalidRequest, "parameter "+k+" repeated")
		}
		if len(form.Get(k)) > maxParamLen {
			return fail(errInvalidRequest, "parameter "+k+" too long")
		}
	}
	switch {
	case form.Get("request") != "":
		return fail(errRequestNotSupported, "request objects are not supported")
	case form.Get("request_uri") != "":
		return fail(errRequestURINotSupported, "request_uri is not supported")
	case form.Get("response_type") == "":
		return fail(errInvalidRequest, "response_type is required (response_type=code)")
	case form.Get("response_type") != "code":
		return fail(errUnsupportedResponseType, "only response_type=code is supported")
	case form.Get("response_mode") != "" && form.Get("response_mode") != "query":
		return fail(errInvalidRequest, "only response_mode=query is supported")
	}
	scopes := strings.Fields(form.Get("scope"))
	var kept []string
	for _, s := range scopes {
		if s == ScopeOpenID || s == ScopeProfile {
			kept = append(kept, s)
		}
	}
	if !hasScope(scopes, ScopeOpenID) {
		return fail(errInvalidScope, "scope must include openid")
	}
	req.Scope = strings.Join(kept, " ")
	if form.Get("code_challenge_method") != "S256" {
		return fail(errInvalidRequest, "PKCE is required with code_challenge_method=S256")
	}
	if !validChallenge(req.CodeChallenge) {
		return fail(errInvalidRequest, "code_challenge must be the 43-character base64url SHA-256 of the verifier")
	}
	if strings.Contains(" "+form.Get("prompt")+" ", " none ") {
		return fail(errLoginRequired, "the citizen must authenticate interactively")
	}
	return c, req, nil
}

func hasScope(scopes []string, s string) bool {
	for _, x := range scopes {
		if x == s {
			return true
		}
	}
	return false
}

func registered(c *Client, uri string) bool {
	for _, u := range c.RedirectURIs {
		if u == uri {
			return true
		}
	}
	return false
}

// validChallenge: an S256 challenge is BASE64URL(SHA-256(verifier)), 43
// characters without padding.
func validChallenge(s string) bool {
	if len(s) != 43 {
		return false
	}
	return isBase64URL(s)
}

func isBase64URL(s string) bool {
	for _, ch := range s {
		switch {
		case ch >= 'A' && ch <= 'Z', ch >= 'a' && ch <= 'z', ch >= '0' && ch <= '9', ch == '-', ch == '_':
		default:
			return false
		}
	}
	return true
}

func hostOf(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return ""
	}
	return u.Hostname()
}

// redirectError sends the error to the client's redirect URI with state and
// iss (RFC 6749 §4.1.2.1, RFC 9207).
func (p *Provider) redirectError(w http.ResponseWriter, r *http.Request, req *AuthRequest, code, desc string) {
	q := url.Values{"error": {code}, "iss": {p.cfg.Issuer}}
	if desc != "" {
		q.Set("error_description", desc)
	}
	if req.State != "" {
		q.Set("state", req.State)
	}
	p.redirect(w, r, req.RedirectURI, q)
}

func (p *Provider) redirect(w http.ResponseWriter, r *http.Request, base string, q url.Values) {
	sep := "?"
	if strings.Contains(base, "?") {
		sep = "&"
	}
	w.Header().Set("Cache-Control", "no-store")
	http.Redirect(w, r, base+sep+q.Encode(), http.StatusSeeOther)
}

// authorize serves the authorization endpoint: it validates the request,
// logs a citizen with a client certificate in at once, shows the mobile ID
// form otherwise, and starts a mobile login when the form comes back.
func (p *Provider) authorize(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	r.Body = http.MaxBytesReader(w, r.Body, maxFormBytes)
	if err := r.ParseForm(); err != nil {
		renderPage(w, http.StatusBadRequest, "error", errorPage{Error: "malformed request"})
		return
	}
	form := r.Form
	if r.Method == http.MethodPost {
		form = r.PostForm
	}
	c, req, aerr := p.parseAuthRequest(ctx, form)
	if aerr != nil {
		clientID := form.Get("client_id")
		if err := p.auditAuthorizeRefusal(r, "oidc.authorize", clientID, map[string]any{
			"error": aerr.code, "reason": aerr.desc, "redirectURI": form.Get("redirect_uri"), "remote": r.RemoteAddr,
		}); err != nil {
			p.refusalUnrecorded(w, r, req, aerr.redirect)
			return
		}
		if !aerr.redirect {
			renderPage(w, http.StatusBadRequest, "error", errorPage{Error: aerr.code + ": " + aerr.desc})
			return
		}
		p.redirectError(w, r, req, aerr.code, aerr.desc)
		return
	}
	if r.TLS != nil && len(r.TLS.PeerCertificates) > 0 {
		p.mtlsLogin(w, r, c, req)
		return
	}
	if r.Method == http.MethodPost && form.Has("civil_number") {
		p.startMobile(w, r, c, req, form)
		return
	}
	p.showLogin(w, c, form, "", "", http.StatusOK)
}

// showLogin shows the login form of an authorization request of kind
// (KindCSC or an OpenID Connect login), its parameters carried along.
func (p *Provider) showLogin(w http.ResponseWriter, c *Client, form url.Values, kind, msg string, status int) {
	params, action, purpose := authParams, p.endpoint(PathAuthorize), ""
	if kind == KindCSC {
		params, action = cscParams, p.endpoint(PathCSCAuthorize)
		purpose = "It asks to use your signing service. يطلب استخدام خدمة التوقيع الخاصة بك."
	}
	hidden := map[string]string{}
	for _, k := range params {
		if v := form.Get(k); v != "" {
			hidden[k] = v
		}
	}
	page := loginPage{ClientName: c.Name, Action: action, Hidden: hidden, Error: msg, Purpose: purpose, Shares: cscShares()}
	if kind != KindCSC {
		page.Shares = sharedClaims(c, form.Get("scope"))
	}
	renderPage(w, status, "login", page)
}

// mtlsLogin logs in the holder of the TLS client certificate.
func (p *Provider) mtlsLogin(w http.ResponseWriter, r *http.Request, c *Client, req *AuthRequest) {
	citizen, ok := p.mtlsCitizen(w, r, c, req)
	if !ok {
		return
	}
	p.issueCode(w, r, c, req, citizen, MethodMTLS, p.now(), false)
}

// mtlsCitizen authenticates the holder of the TLS client certificate. On a
// refusal or failure it has recorded it and answered the client's redirect
// URI, and ok is false.
func (p *Provider) mtlsCitizen(w http.ResponseWriter, r *http.Request, c *Client, req *AuthRequest) (citizen Citizen, ok bool) {
	ctx := r.Context()
	start := time.Now()
	defer func() { p.m.duration.WithLabelValues("mtls").Observe(time.Since(start).Seconds()) }()
	leaf, err := p.verifyTLSCitizen(r.TLS.PeerCertificates)
	if err == nil {
		citizen, err = p.checkCertificate(ctx, leaf)
	}
	if err != nil {
		details := map[string]any{"remote": r.RemoteAddr}
		if len(r.TLS.PeerCertificates) > 0 {
			// Named as every client-certificate refusal is (issuer, serial).
			ref := auth.RefOf(r.TLS.PeerCertificates[0])
			details["certSerial"], details["certificate"] = fmt.Sprintf("%x", r.TLS.PeerCertificates[0].SerialNumber), ref
		}
		if aerr := p.loginFailed(ctx, MethodMTLS, c.ID, "", details, err); aerr != nil {
			p.refusalUnrecorded(w, r, req, true)
			return Citizen{}, false
		}
		p.redirectError(w, r, req, errorCodeOf(err), "the citizen could not be authenticated")
		return Citizen{}, false
	}
	return citizen, true
}

// loginFailed records a refused or failed login: audit record and metric.
// It returns the error of the audit append: a refusal whose record could
// not be written is answered as a failure (refusalUnrecorded).
func (p *Provider) loginFailed(ctx context.Context, method, clientID, civil string, details map[string]any, err error) error {
	outcome := "refused"
	var rf *refusal
	if errors.As(err, &rf) {
		details["reason"] = rf.reason
	} else {
		outcome = "failure"
		details["reason"] = err.Error()
		p.log.ErrorContext(ctx, "login failed", "method", method, "client", clientID, "err", err)
	}
	details["method"] = method
	actor := ""
	if civil != "" {
		actor = "citizen:" + civil
	}
	aerr := p.audit(ctx, actor, "oidc.login", clientID, outcome, details)
	if aerr != nil {
		outcome = "failure"
	}
	p.m.logins.WithLabelValues(method, outcome).Inc()
	return aerr
}

// refusalUnrecorded answers a refusal whose audit record could not be
// written: no refusal leaves without its record, so the answer is the
// failure of the service, server_error on the client's redirect URI
// (RFC 6749 section 4.1.2.1) when redirect is true, else a 503 error page.
func (p *Provider) refusalUnrecorded(w http.ResponseWriter, r *http.Request, req *AuthRequest, redirect bool) {
	if !redirect || req == nil {
		renderPage(w, http.StatusServiceUnavailable, "error", errorPage{Error: errServerError + ": " + descRefusalUnrecorded})
		return
	}
	p.redirectError(w, r, req, errServerError, descRefusalUnrecorded)
}

// descRefusalUnrecorded is the error description of a refusal whose audit
// record could not be written.
const descRefusalUnrecorded = "temporarily unable to record the refusal"

// errorCodeOf is the OAuth error for a failed login: access_denied for a
// refusal, server_error when something broke.
func errorCodeOf(err error) string {
	var rf *refusal
	if errors.As(err, &rf) {
		return errAccessDenied
	}
	return errServerError
}

// issueCode records a grant for the authenticated citizen and redirects the
// browser to the client with the code. The login's success is audited and
// counted here unless it was at approval (audited).
func (p *Provider) issueCode(w http.ResponseWriter, r *http.Request, c *Client, req *AuthRequest, citizen Citizen, method string, authTime time.Time, audited bool) {
	ctx := r.Context()
	now := p.now()
	code := randomToken(32)
	acr, amr := p.assurance(citizen, method)
	g := &Grant{
		ID: randomToken(18), CodeHash: hashSecret(code), Request: *req, Citizen: citizen, Method: method,
		ACR: acr, AMR: amr, AuthTime: authTime.UTC(), Created: now, CodeExpires: now.Add(p.cfg.CodeLifetime),
	}
	if err := p.cfg.Store.CreateGrant(ctx, g); err != nil {
		_ = p.loginFailed(ctx, method, c.ID, citizen.CivilNumber, map[string]any{"certSerial": citizen.CertSerial}, fmt.Errorf("recording the grant: %w", err)) // answered as a failure either way
		p.redirectError(w, r, req, errServerError, "temporarily unable to complete the login")
		return
	}
	q := url.Values{"code": {code}, "iss": {p.cfg.Issuer}}
	if req.State != "" {
		q.Set("state", req.State)
	}
	if audited {
		p.redirect(w, r, req.RedirectURI, q)
		return
	}
	if err := p.audit(ctx, "citizen:"+citizen.CivilNumber, "oidc.login", c.ID, "success", map[string]any{
		"method": method, "certSerial": citizen.CertSerial, "grant": g.ID, "acr": g.ACR, "remote": r.RemoteAddr, "scope": req.Scope,
	}); err != nil {
		_ = p.cfg.Store.RevokeGrant(context.WithoutCancel(ctx), g.ID)
		p.m.logins.WithLabelValues(method, "failure").Inc()
		p.redirectError(w, r, req, errServerError, "temporarily unable to complete the login")
		return
	}
	p.m.logins.WithLabelValues(method, "success").Inc()
	p.redirect(w, r, req.RedirectURI, q)
}

// verificationCode returns four random digits.
func verificationCode() string {
	n, _ := rand.Int(rand.Reader, big.NewInt(10000))
	return fmt.Sprintf("%04d", n.Int64())
}

// startMobile creates a pending remote login for the civil number entered
// and shows the verification code. Whether the citizen has a mobile ID is
// not revealed here: an unknown number fails at approval like any other.
func (p *Provider) startMobile(w http.ResponseWriter, r *http.Request, c *Client, req *AuthRequest, form url.Values) {
	ctx := r.Context()
	if p.loginRateLimited(w, r, c, req, form) {
		return
	}
	civil := strings.TrimSpace(form.Get("civil_number"))
	if len(civil) < 6 || len(civil) > 12 || strings.Trim(civil, "0123456789") != "" {
		p.showLogin(w, c, form, req.Kind, "Enter your civil number (6 to 12 digits). أدخل رقمك المدني (من 6 إلى 12 رقمًا).", http.StatusBadRequest)
		return
	}
	now := p.now()
	// The count and the insert are one step for this civil number on
	// this node (nodes that share a database may each let one more in).
	mu := &p.starts[startStripe(civil, len(p.starts))]
	addr := clientip.FromRequest(r).Key()
	mu.Lock()
	if !p.roomForLogin(w, r, c, req, form, civil, addr, now) {
		mu.Unlock()
		return
	}
	key := randomToken(32)
	l := &Login{
		ID: randomToken(18), BrowserKeyHash: hashSecret(key), Request: *req, CivilNumber: civil, ClientKey: addr,
		VerificationCode: verificationCode(), State: LoginPending, Created: now, Expires: now.Add(p.cfg.LoginLifetime),
	}
	err := p.cfg.Store.CreateLogin(ctx, l)
	mu.Unlock()
	if err != nil {
		p.log.ErrorContext(ctx, "recording login", "err", err)
		renderPage(w, http.StatusServiceUnavailable, "error", errorPage{Error: "temporarily unable to start the login"})
		return
	}
	renderPage(w, http.StatusOK, "wait", waitPage{Code: l.VerificationCode, Session: l.ID, Key: key, Action: p.endpoint(PathComplete), Match: p.cfg.NumberMatching})
}

// startStripe picks the lock of civil's login starts among n.
func startStripe(civil string, n int) int {
	h := fnv.New32a()
	_, _ = h.Write([]byte(civil))
	return int(h.Sum32() % uint32(n))
}

// msgTooManyPending is the login page's message when the civil number
// entered has too many logins awaiting approval.
const msgTooManyPending = "Too many logins are waiting for approval for this civil number. Check your phone, or try again in a few minutes. " +
	"توجد طلبات دخول كثيرة بانتظار الموافقة لهذا الرقم المدني. تحقق من هاتفك، أو حاول مرة أخرى بعد بضع دقائق."

// roomForLogin reports whether civil may have one more login awaiting
// approval: at most Config.MaxPendingLogins started from the client's
// address addr (clientip Key, as the login rate limit keys it), and at most
// MaxPendingListed from all addresses together; and none from an address
// whose logins the citizen denied all at once (PathMobileDenyAll) within
// the last LoginLifetime, or a few addresses filled MaxPendingListed again
// right after the citizen's deny-all. A bound on the number alone let
// whoever knows a citizen's civil number lock the citizen out: a few
// starts every LoginLifetime and the citizen's own were refused.
// When there is no room it has recorded the refusal and shown the login
// form again (429), and the answer is the same whether the number has a
// mobile ID or not.
func (p *Provider) roomForLogin(w http.ResponseWriter, r *http.Request, c *Client, req *AuthRequest, form url.Values, civil, addr string, now time.Time) bool {
	ctx := r.Context()
	n, err := p.cfg.Store.CountPendingLogins(ctx, civil, addr, now)
	if err != nil {
		p.log.ErrorContext(ctx, "counting pending logins", "err", err)
		renderPage(w, http.StatusServiceUnavailable, "error", errorPage{Error: "temporarily unable to start the login"})
		return false
	}
	var cause error
	switch {
	case n.Blocked:
		cause = refuse("the citizen denied the logins started from this address for this civil number")
	case n.FromClient >= p.cfg.MaxPendingLogins:
		cause = refuse("%d logins started from this address already await approval for this civil number", n.FromClient)
	case n.Total >= MaxPendingListed:
		cause = refuse("%d logins already await approval for this civil number", n.Total)
	default:
		return true
	}
	if aerr := p.loginFailed(ctx, MethodMobile, c.ID, civil, map[string]any{"remote": r.RemoteAddr, "address": addr}, cause); aerr != nil {
		renderPage(w, http.StatusServiceUnavailable, "error", errorPage{Error: errServerError + ": " + descRefusalUnrecorded})
		return false
	}
	w.Header().Set("Retry-After", strconv.Itoa(int(p.cfg.LoginLifetime/time.Second)))
	p.showLogin(w, c, form, req.Kind, msgTooManyPending, http.StatusTooManyRequests)
	return false
}

// complete is where the browser comes back after approving on the phone:
// an approved login gets its code, a denied one access_denied, a pending
// one the waiting page again.
func (p *Provider) complete(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	r.Body = http.MaxBytesReader(w, r.Body, maxFormBytes)
	if err := r.ParseForm(); err != nil {
		renderPage(w, http.StatusBadRequest, "error", errorPage{Error: "malformed request"})
		return
	}
	id, key := r.PostForm.Get("login"), r.PostForm.Get("key")
	l, err := p.cfg.Store.Login(ctx, id)
	if err == nil && subtle.ConstantTimeCompare(l.BrowserKeyHash, hashSecret(key)) != 1 {
		err = ErrNotFound
	}
	if err != nil {
		if !errors.Is(err, ErrNotFound) {
			p.log.ErrorContext(ctx, "reading login", "err", err)
		}
		renderPage(w, http.StatusBadRequest, "error", errorPage{Error: "unknown or expired login session"})
		return
	}
	c, err := p.cfg.Store.Client(ctx, l.Request.ClientID)
	if err != nil {
		renderPage(w, http.StatusBadRequest, "error", errorPage{Error: "the portal of this login is no longer registered"})
		return
	}
	switch l.State {
	case LoginPending:
		if p.now().After(l.Expires) {
			if aerr := p.denyLogin(ctx, l, refuse("login session expired before approval")); aerr != nil {
				p.refusalUnrecorded(w, r, &l.Request, true)
				return
			}
			p.redirectError(w, r, &l.Request, errAccessDenied, "the login was not approved in time")
			return
		}
		renderPage(w, http.StatusAccepted, "wait", waitPage{Code: l.VerificationCode, Session: l.ID, Key: key, Action: p.endpoint(PathComplete), Match: p.cfg.NumberMatching})
	case LoginDenied:
		p.redirectError(w, r, &l.Request, errAccessDenied, "the citizen could not be authenticated")
	case LoginApproved:
		if l.Citizen == nil {
			renderPage(w, http.StatusInternalServerError, "error", errorPage{Error: "approved login without a citizen"})
			return
		}
		if l.Request.Kind == KindCSC && l.Request.Credential != nil && p.cfg.Signing != nil {
			p.mobileCredentialStep(w, r, l, c, key)
			return
		}
		if p.now().After(l.Expires.Add(p.cfg.CodeLifetime)) {
			renderPage(w, http.StatusBadRequest, "error", errorPage{Error: "this login expired; start again from the portal"})
			return
		}
		l.State = LoginUsed
		if err := p.cfg.Store.UpdateLogin(ctx, l, LoginApproved); err != nil {
			renderPage(w, http.StatusConflict, "error", errorPage{Error: "this login was already completed"})
			return
		}
		// The approval was audited; the grant is recorded by issueCode.
		p.issueCode(w, r, c, &l.Request, *l.Citizen, MethodMobile, l.AuthTime, true)
	default:
		renderPage(w, http.StatusConflict, "error", errorPage{Error: "this login was already completed"})
	}
}
