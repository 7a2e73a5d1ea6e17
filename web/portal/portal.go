// Package portal serves the people's pages of `thiqa serve`: the front
// page (/), the citizen portal (/my/, with /my/approve, the phone side of
// mobile ID) and the registration officer's console (/ra/), in Arabic and
// English; and, for a browser, the page of an address nothing serves (404)
// or a method the page does not take (405) in place of Go's plain text
// (Wants, ServeError).
//
// The pages are a client of the server's own API: a person signs in (a
// citizen with the deployment's digital ID through OpenID Connect, an
// officer or a phone with an API credential of their own), the portal keeps
// a short-lived server-side session, and every action calls the API route
// in process with the person as the caller (auth.WithSession). The
// authorisation, the service code and the audit records are therefore
// those of the API, under the person's identity. The portal imports no
// service package; it reads the API's JSON answers.
//
// Pages are server-rendered HTML with one style sheet and no script: every
// form works without JavaScript, carries a CSRF token, and the responses
// forbid everything else with a strict Content-Security-Policy.
package portal

import (
	"bytes"
	"context"
	"embed"
	"errors"
	"fmt"
	"html/template"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"sync/atomic"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/thiqa/thiqa/internal/audit"
	"github.com/thiqa/thiqa/internal/auth"
	"github.com/thiqa/thiqa/internal/clientip"
	"github.com/thiqa/thiqa/internal/outage"
	"github.com/thiqa/thiqa/internal/ratelimit"
)

//go:embed templates/*.html static/*
var files embed.FS

// CSP is the Content-Security-Policy of every page: this origin's style
// sheet only, no script at all, forms posting only here, no framing.
const CSP = "default-src 'none'; style-src 'self'; img-src 'self' data:; form-action 'self'; " +
	"base-uri 'none'; frame-ancestors 'none'"

// Auditor records the portal's own security events (refused CSRF tokens,
// a citizen at the officer console, sign-ins); internal/audit.Log
// implements it.
type Auditor interface {
	Append(ctx context.Context, e audit.Entry) (audit.Record, error)
}

// Links are the addresses the front page shows; empty ones are left out.
type Links struct {
	// PublicBaseURL is the server's public address, shown with each path.
	PublicBaseURL                                                       string
	Verify, OpenAPI, APIGuide, Discovery, TSA, OCSP, Ready, TrustedList string
	// CACertificates and CRLs name the CA files: label → path.
	CACertificates, CRLs []Link
}

// Link is one labelled address.
type Link struct{ Label, Path string }

// OIDCClient is how the citizen portal signs people in: a first-party
// client of the deployment's own OpenID Connect provider (code flow with
// PKCE, private_key_jwt), registered by cmd/thiqa.
type OIDCClient struct {
	// Issuer is the provider's issuer identifier (the ID token's iss).
	Issuer string
	// ClientID is the portal's registered client ID.
	ClientID string
	// RedirectURI is the registered redirect URI (…/my/callback).
	RedirectURI string
	// Key signs the client assertions (private_key_jwt) for the token
	// endpoint; its public key is the registered client's JWK set.
	Key jose.OpaqueSigner
}

// Options configure the pages.
type Options struct {
	// API serves the server's routes; the pages call it in process.
	API http.Handler
	// Authenticate identifies the caller of a request by its bearer token
	// or client certificate (auth.Authenticator.Authenticate): officers
	// and phones sign in with it.
	Authenticate func(*http.Request) (*auth.Principal, error)
	// Recheck, when set, is asked on every request of a signed-in session
	// whether the credential it was made with still holds
	// (auth.Authenticator.Recheck): a revoked officer certificate or a
	// revoked grant ends the session at once.
	Recheck func(context.Context, *auth.Principal) error
	// OIDC signs citizens in; nil disables the citizen sign-in.
	OIDC *OIDCClient
	// Audit receives the portal's own security events.
	Audit Auditor
	// Logger receives server-side errors; discarded when nil.
	Logger *slog.Logger
	// Secure marks cookies Secure and names the session cookie __Host-:
	// browsers reach the pages over https (the server speaks TLS, or a
	// load balancer in front of it does).
	Secure bool
	// Origin, when set, is where browsers use the citizen portal and the
	// officer console (scheme://host[:port], e.g. https://id.example.om):
	// the origin their session cookie is bound to and the portal's OIDC
	// redirect URI names. Empty: whatever host the browser used.
	Origin string
	// RedirectHosts are the other hosts (host[:port], as a Host header
	// names them; no port means 80) by which browsers may reach this
	// server, typically publicBaseURL's plain-http host: a request there
	// for /my/… or /ra/… is redirected to the same path on Origin. The
	// front page, the style sheet and every route of the services
	// (CRLs, OCSP, certificates, the TSA) are served on any host.
	RedirectHosts []string
	// MaxUploadBytes bounds a PDF to sign (default 10 MiB).
	MaxUploadBytes int64
	// MaxHeldBytes bounds the documents all sessions hold at once
	// (uploads awaiting the PIN, signed results awaiting download);
	// default 256 MiB.
	MaxHeldBytes int64
	// SessionIdle and SessionMax bound a session: idle time (default 15
	// minutes) and age since the sign-in (default 1 hour).
	SessionIdle, SessionMax time.Duration
	// MaxSessions bounds the store (default 10,000).
	MaxSessions int
	// Links are shown on the front page.
	Links Links
	// Country is the deployment's country (ISO 3166 alpha-2, e.g. OM):
	// the country the officer's issue form starts with. Empty leaves the
	// field empty.
	Country string
	// Now is the clock; time.Now when nil.
	Now func() time.Time
}

// Portal serves the pages.
type Portal struct {
	o     Options
	cat   catalogue
	pages map[string]*template.Template
	css   []byte
	ses   *sessions
	held  atomic.Int64
	log   *slog.Logger
	start time.Time
	// refusals bounds the records of refusals of visitors who are not
	// signed in (auditRefusal).
	refusals *ratelimit.RefusalBudget
}

// New checks the options and parses the embedded pages.
func New(o Options) (*Portal, error) {
	if o.API == nil || o.Authenticate == nil || o.Audit == nil {
		return nil, errors.New("portal: API, Authenticate and Audit are required")
	}
	if err := checkOrigin(o); err != nil {
		return nil, err
	}
	if o.MaxUploadBytes <= 0 {
		o.MaxUploadBytes = 10 << 20
	}
	if o.MaxHeldBytes <= 0 {
		o.MaxHeldBytes = 256 << 20
	}
	if o.SessionIdle <= 0 {
		o.SessionIdle = 15 * time.Minute
	}
	if o.SessionMax <= 0 {
		o.SessionMax = time.Hour
	}
	if o.MaxSessions <= 0 {
		o.MaxSessions = 10_000
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	log := o.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	cat, err := loadCatalogue()
	if err != nil {
		return nil, err
	}
	css, err := files.ReadFile("static/portal.css")
	if err != nil {
		return nil, err
	}
	p := &Portal{o: o, cat: cat, css: css, log: log, start: o.Now(), ses: newSessions(o.SessionIdle, o.SessionMax, o.MaxSessions, o.Now),
		refusals: ratelimit.NewAnonymousRefusalBudget(o.Now)}
	p.ses.onDrop = func(se *session) {
		if se.signed != nil {
			p.held.Add(-se.signed.size())
			se.signed = nil
		}
	}
	if p.pages, err = parsePages(); err != nil {
		return nil, err
	}
	return p, nil
}

// Mux is where the pages mount their routes.
type Mux interface {
	Handle(pattern string, handler http.Handler)
}

// Register mounts the pages on mux. With Options.RedirectHosts, the
// routes of /my/ and /ra/ answer a request on one of those hosts with a
// redirect to Options.Origin.
func (p *Portal) Register(mux Mux) {
	h := func(pattern string, f func(http.ResponseWriter, *http.Request, *view)) {
		var hd http.Handler = p.page(f)
		if _, path, _ := strings.Cut(pattern, " "); strings.HasPrefix(path, "/my/") || strings.HasPrefix(path, "/ra/") {
			// The pages of a session live on Origin only.
			hd = p.onOrigin(hd)
		}
		mux.Handle(pattern, hd)
	}
	mux.Handle("GET /assets/portal.css", http.HandlerFunc(p.serveCSS))
	h("GET /{$}", p.front)
	// The citizen portal.
	h("GET /my/{$}", p.myHome)
	h("GET /my/activity", p.myActivity)
	h("GET /my/login", p.myLogin)
	h("GET /my/callback", p.myCallback)
	h("POST /my/logout", p.logout)
	h("POST /my/pin", p.myPIN)
	h("GET /my/sign", p.mySignForm)
	h("POST /my/sign", p.mySignUpload)
	h("POST /my/sign/approve", p.mySignApprove)
	h("GET /my/signed", p.mySignedDownload)
	h("POST /my/revoke", p.myRevoke)
	h("POST /my/pin/change", p.myPINChange)
	h("POST /my/pin/activate", p.myPINActivate)
	h("POST /my/renew", p.myRenew)
	h("GET /my/approve", p.phoneHome)
	h("POST /my/approve", p.phoneApprove)
	h("POST /my/approve/login", p.phoneLogin)
	h("POST /my/approve/deny-all", p.phoneDenyAll)
	// The registration officer's console.
	h("GET /ra/{$}", p.raHome)
	h("POST /ra/login", p.raLogin)
	h("POST /ra/logout", p.logout)
	h("GET /ra/certificate", p.raCertificate)
	h("GET /ra/search", p.raSearch)
	h("GET /ra/issue", p.raIssueForm)
	h("POST /ra/issue", p.raIssue)
	h("POST /ra/revoke", p.raRevoke)
	h("POST /ra/renew", p.raRenew)
	h("POST /ra/pin/reset", p.raPINReset)
}

func (p *Portal) serveCSS(w http.ResponseWriter, r *http.Request) {
	securityHeaders(w)
	w.Header().Set("Content-Type", "text/css; charset=utf-8")
	w.Header().Set("Cache-Control", "no-cache")
	http.ServeContent(w, r, "", p.start, bytes.NewReader(p.css))
}

// securityHeaders are sent with every answer of the pages.
func securityHeaders(w http.ResponseWriter) {
	h := w.Header()
	h.Set("Content-Security-Policy", CSP)
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("X-Frame-Options", "DENY")
	h.Set("Cross-Origin-Opener-Policy", "same-origin")
}

// view is one request to a page: the language, the browser's session
// (always present: an anonymous one before the sign-in) and the answer.
type view struct {
	p    *Portal
	w    http.ResponseWriter
	r    *http.Request
	lang string
	se   *session
}

// page wraps a page handler: security headers, no caching, the language
// and the session; every POST must carry the session's CSRF token.
func (p *Portal) page(f func(http.ResponseWriter, *http.Request, *view)) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		v, ok := p.open(w, r)
		if !ok {
			return
		}
		expired := false
		if v.se == nil {
			if _, err := r.Cookie(cookieName(p.o.Secure)); err == nil {
				expired = true
			}
		}
		if r.Method == http.MethodPost {
			defer func() {
				if r.MultipartForm != nil {
					_ = r.MultipartForm.RemoveAll()
				}
			}()
			// The token is checked before the body is read, but for its
			// first csrfPeekBytes: a forged post of a large body (40 at
			// once held 165 MB) is refused without reading it.
			token, err := peekCSRF(r)
			// Bounded after the peek, which puts back what it read: the
			// bound is the whole body's, and r.Body stays the
			// *http.maxBytesReader that the form parse takes as the only
			// bound (another body it cuts at 10 MB, 400 and not 413).
			r.Body = http.MaxBytesReader(w, r.Body, p.o.MaxUploadBytes+(1<<20))
			if err != nil {
				badForm(v, err)
				return
			}
			if v.se == nil || !v.se.validCSRF(token) {
				p.refuseCSRF(v, expired)
				return
			}
			// ParseForm first: ParseMultipartForm answers a url-encoded
			// body's failure (over the bound, cut short) ErrNotMultipart,
			// which read as a form without its token (403, web.csrf).
			err = r.ParseForm()
			if err == nil {
				if err = r.ParseMultipartForm(1 << 20); errors.Is(err, http.ErrNotMultipart) {
					err = nil
				}
			}
			if err != nil {
				badForm(v, err)
				return
			}
			if !v.se.validCSRF(r.PostFormValue("csrf")) { // the field the form holds, parsed whole
				p.refuseCSRF(v, expired)
				return
			}
		}
		f(w, r, v)
	})
}

// badForm answers a form whose body could not be read or parsed: 413
// when it is larger than the portal takes, else 400.
func badForm(v *view, err error) {
	var mbe *http.MaxBytesError
	if errors.As(err, &mbe) {
		v.fail(http.StatusRequestEntityTooLarge, "err.too_large")
		return
	}
	v.fail(http.StatusBadRequest, "err.bad_form")
}

// refuseCSRF answers a form without the session's CSRF token: 403, saying
// the session expired when the browser's one has, else audited (web.csrf).
func (p *Portal) refuseCSRF(v *view, expired bool) {
	if expired {
		v.fail(http.StatusForbidden, "err.session_expired")
		return
	}
	v.failRecorded(p.auditRefusal(v.r, v.se, "web.csrf", "CSRF token missing or wrong"), http.StatusForbidden, "err.csrf")
}

// open starts the answer of a page: security headers, no caching, the
// language (remembered when chosen by ?lang=) and the browser's session,
// whose credential is rechecked. ok is false when the request was answered.
func (p *Portal) open(w http.ResponseWriter, r *http.Request) (v *view, ok bool) {
	securityHeaders(w)
	w.Header().Set("Cache-Control", "no-store")
	v = &view{p: p, w: w, r: r}
	explicit := r.URL.Query().Get("lang")
	if isLanguage(explicit) {
		http.SetCookie(w, &http.Cookie{Name: "thiqa-lang", Value: explicit, Path: "/", MaxAge: 365 * 24 * 3600, Secure: p.o.Secure, SameSite: http.SameSiteLaxMode, HttpOnly: true})
	} else if c, err := r.Cookie("thiqa-lang"); err == nil {
		explicit = c.Value
	}
	v.lang = pickLanguage(explicit, r.Header.Get("Accept-Language"))
	if c, err := r.Cookie(cookieName(p.o.Secure)); err == nil {
		v.se, _ = p.ses.get(c.Value)
	}
	if v.se != nil && !p.stillValid(v) {
		return nil, false
	}
	return v, true
}

// stillValid rechecks the credential of the view's signed-in session
// (Options.Recheck). A credential that no longer holds ends the session,
// audited, and the request goes on as one without a session (500 when the
// record cannot be written); when its status cannot be learnt the request
// is answered 503. ok is false when the request was answered.
func (p *Portal) stillValid(v *view) (ok bool) {
	who, _ := v.who()
	if who == nil || p.o.Recheck == nil {
		return true
	}
	err := p.o.Recheck(v.r.Context(), who)
	switch {
	case err == nil:
		return true
	case errors.Is(err, auth.ErrUnavailable):
		p.log.WarnContext(v.r.Context(), "rechecking a session's credential", "err", err)
		v.fail(http.StatusServiceUnavailable, "err.unavailable")
		return false
	}
	aerr := p.auditRefusal(v.r, v.se, "web.session", "the credential of the session no longer holds: "+err.Error())
	p.ses.drop(v.se)
	v.se = nil
	if aerr != nil {
		v.failRecorded(aerr, http.StatusForbidden, "err.session_expired")
		return false
	}
	return true
}

// ensure gives the browser a session when it has none yet: anonymous
// visitors get one only where a form or a sign-in needs it.
func (v *view) ensure() *session {
	if v.se == nil {
		var value string
		v.se, value = v.p.ses.create()
		setCookie(v.w, v.p.o.Secure, value)
	}
	return v.se
}

// who returns the signed-in person of the view's session, nil for none.
func (v *view) who() (*auth.Principal, string) {
	if v.se == nil {
		return nil, ""
	}
	var who *auth.Principal
	var kind string
	v.p.ses.locked(func() { who, kind = v.se.who, v.se.kind })
	return who, kind
}

// flash leaves a message for the next page of this session.
func (v *view) flash(key, kind string) {
	se := v.ensure()
	v.p.ses.locked(func() { se.flash, se.flashKind = key, kind })
}

// redirect answers 303 to path.
func (v *view) redirect(path string) {
	http.Redirect(v.w, v.r, path, http.StatusSeeOther)
}

// auditRefusal records a security refusal of the pages under the
// session's person (or anonymous: within the budgets of anonymousRecorded);
// it returns the error of the audit append (failRecorded answers
// accordingly).
func (p *Portal) auditRefusal(r *http.Request, se *session, action, reason string) error {
	return p.recordRefusal(r, se, action, reason, true)
}

// recordRefusal is auditRefusal; bounded false records the refusal of a
// visitor who is not signed in every time (credentials that verified but
// are refused: they name who presented them).
func (p *Portal) recordRefusal(r *http.Request, se *session, action, reason string, bounded bool) error {
	actor, caller := auth.ActorAnonymous, (*auth.Caller)(nil)
	if se != nil {
		p.ses.locked(func() {
			if se.who != nil {
				actor, caller = se.who.Subject, se.who.Caller()
			}
		})
	}
	details := map[string]any{"reason": reason, "caller": caller, "remote": r.RemoteAddr}
	undo := func() {}
	if caller == nil && bounded {
		var record bool
		if record, undo = p.anonymousRecorded(r, details); !record {
			return nil
		}
	}
	if _, err := p.o.Audit.Append(r.Context(), audit.Entry{Actor: actor, Action: action, Object: r.URL.Path, Outcome: audit.OutcomeRefused,
		Details: details}); err != nil {
		undo()
		p.log.ErrorContext(r.Context(), "audit append failed", "action", action, "err", err)
		return err
	}
	return nil
}

// anonymousRecorded takes the refusal of a visitor who is not signed in
// from the budget of its address and the overall one (ratelimit.OverallBurst,
// OverallRate), and says whether to record it: within both, and the first
// of each run past the address's (details then say so). The visitor is
// answered as always either way. undo is for a record that cannot be
// written: the run's next refusal is recorded instead.
func (p *Portal) anonymousRecorded(r *http.Request, details map[string]any) (record bool, undo func()) {
	v := p.refusals.Take(clientip.FromRequest(r).Key())
	if !v.Record {
		return false, nil
	}
	if v.Unrecorded > 0 {
		details["unrecordedOverall"] = v.Unrecorded
	}
	if v.Past {
		details["note"] = "further refusals of this address in a row are not recorded"
	}
	return true, v.Undo
}

// failRecorded answers a refusal with the error page of key and status
// once its audit record is written (aerr is the error of the append): no
// refusal leaves without its record, so without one the answer is the
// service's failure instead: 503 when the audit log is out for a while
// (outage.Is: the database down, the disk full), 500 otherwise.
func (v *view) failRecorded(aerr error, status int, key string) {
	if aerr != nil {
		status, key = http.StatusInternalServerError, "err.unavailable"
		if outage.Is(aerr) {
			status = http.StatusServiceUnavailable
		}
	}
	v.fail(status, key)
}

// apiAnswer is the answer of an in-process API call.
type apiAnswer struct {
	status int
	header http.Header
	body   []byte
}

// ok reports a 2xx answer.
func (a *apiAnswer) ok() bool { return a.status >= 200 && a.status < 300 }

// recorder collects an in-process answer, up to limit bytes.
type recorder struct {
	h      http.Header
	status int
	buf    bytes.Buffer
	limit  int64
	over   bool
}

func (rec *recorder) Header() http.Header { return rec.h }
func (rec *recorder) WriteHeader(s int) {
	if rec.status == 0 {
		rec.status = s
	}
}
func (rec *recorder) Write(b []byte) (int, error) {
	if rec.status == 0 {
		rec.status = http.StatusOK
	}
	if int64(rec.buf.Len()+len(b)) > rec.limit {
		rec.over = true
		return 0, errors.New("portal: answer too large")
	}
	return rec.buf.Write(b)
}

// call sends one request to the server's own routes in process, as who
// (nil: anonymous, for public routes), with the browser's address and
// context, and returns the answer (at most limit bytes).
func (v *view) call(who *auth.Principal, method, path, ctype string, body io.Reader, hdr map[string]string, limit int64) (*apiAnswer, error) {
	ctx := v.r.Context()
	if who != nil {
		ctx = auth.WithSession(ctx, who)
	}
	if body == nil {
		body = http.NoBody
	}
	req, err := http.NewRequestWithContext(ctx, method, path, body)
	if err != nil {
		return nil, err
	}
	req.RemoteAddr, req.Host, req.TLS = v.r.RemoteAddr, v.r.Host, nil
	req.RequestURI = ""
	if ctype != "" {
		req.Header.Set("Content-Type", ctype)
	}
	for k, val := range hdr {
		req.Header.Set(k, val)
	}
	rec := &recorder{h: http.Header{}, limit: limit}
	v.p.o.API.ServeHTTP(rec, req)
	if rec.over {
		return nil, fmt.Errorf("answer of %s %s larger than %d bytes", method, path, limit)
	}
	if rec.status == 0 {
		rec.status = http.StatusOK
	}
	return &apiAnswer{status: rec.status, header: rec.h, body: rec.buf.Bytes()}, nil
}

// problemIssuerExpiring is the problem type of the CA's answer when the
// issuing CA is too close to the end of its validity to issue the profile
// (ca.ProblemIssuerExpiring).
const problemIssuerExpiring = "urn:thiqa:problem:issuing-ca-expiring"

// problemIssuerRevoked is the problem type of the CA's answer when the
// root CRL revokes the issuing CA (ca.ProblemIssuerRevoked, 409).
const problemIssuerRevoked = "urn:thiqa:problem:issuing-ca-revoked"

// problemWrongCode is the problem type of the provider's refusal of an
// approval whose verification code is wrong (identity.ProblemWrongCode):
// under number matching the login is cancelled.
const problemWrongCode = "urn:thiqa:problem:wrong-verification-code"

// problemFirstPIN is the problem type of the signing service's refusal of
// a first PIN set without an activation code
// (signing.ProblemFirstPINActivation, signing.pinPolicy.firstPINActivation).
const problemFirstPIN = "urn:thiqa:problem:first-pin-needs-activation-code"

// problemNotRenewable is the problem type of the CA's refusal to renew or
// re-key a revoked certificate (409, ca.ErrNotRenewable).
const problemNotRenewable = "urn:thiqa:problem:not-renewable"

// problemPINLocked, problemWrongPIN and problemPINPolicy are the problem
// types of the signing service's refusals of a PIN: locked, wrong with
// tries left, against the policy (signing.ProblemPINLocked,
// signing.ProblemWrongPIN, signing.ProblemPINPolicy).
const (
	problemPINLocked = "urn:thiqa:problem:pin-locked"
	problemWrongPIN  = "urn:thiqa:problem:wrong-pin"
	problemPINPolicy = "urn:thiqa:problem:pin-policy"
)

// problemWrongActivation, problemActivationVoid and
// problemActivationExpired are the problem types of the signing service's
// refusal of an activation code that is wrong, wrong at the last try (now
// void) or past its lifetime (signing.ProblemWrongActivationCode,
// signing.ProblemActivationCodeVoid, signing.ProblemActivationCodeExpired).
const (
	problemWrongActivation   = "urn:thiqa:problem:wrong-activation-code"
	problemActivationVoid    = "urn:thiqa:problem:activation-code-void"
	problemActivationExpired = "urn:thiqa:problem:activation-code-expired"
)

// problemType returns the type of an RFC 9457 answer, "" when the body is
// not one or has none.
func problemType(body []byte) string {
	var pd struct {
		Type string `json:"type"`
	}
	if err := jsonUnmarshal(body, &pd); err != nil {
		return ""
	}
	return pd.Type
}

// problemDetail returns the detail of an RFC 9457 answer (its title when
// there is no detail), "" when the body is not one.
func problemDetail(body []byte) string {
	var pd struct {
		Title  string `json:"title"`
		Detail string `json:"detail"`
	}
	if err := jsonUnmarshal(body, &pd); err != nil {
		return ""
	}
	if pd.Detail != "" {
		return pd.Detail
	}
	return pd.Title
}
