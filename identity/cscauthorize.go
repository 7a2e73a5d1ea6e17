package identity

// The CSC API v2 OAuth 2.0 authorization server (section 8.4): a signing
// application sends the citizen to PathCSCAuthorize with scope service
// (access to the signing service) or scope credential (the signature of
// exact hashes with one credential, SCAL2), code flow with PKCE S256. The
// citizen logs in with the digital ID exactly as for a portal (the ID
// card's certificate over mutual TLS, or mobile ID approved on the phone),
// and for scope credential then reads what is to be signed and enters the
// signing PIN, checked by the signing service (its lockout, its audit
// records). The code is redeemed at PathCSCToken (csctoken.go) for an
// access token of the signing service.

import (
	"context"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/thiqa/thiqa/internal/auth"
)

// Audit actions of the CSC authorization server.
const (
	ActionCSCAuthorize = "csc.oauth2.authorize"
	ActionCSCToken     = "csc.oauth2.token"
)

// cscParams are the authorization request parameters of CSC API v2 section
// 8.4.2 carried through the login and PIN forms.
var cscParams = []string{"client_id", "redirect_uri", "response_type", "scope", "state", "code_challenge", "code_challenge_method",
	"lang", "credentialID", "signatureQualifier", "numSignatures", "hashes", "hashAlgorithmOID", "description", "account_token",
	"clientData", "authorization_details", "request", "request_uri", "response_mode", "prompt"}

// hashSizes are the hash algorithms a credential authorization may name.
var hashSizes = map[string]int{"2.16.840.1.101.3.4.2.1": 32, "2.16.840.1.101.3.4.2.2": 48, "2.16.840.1.101.3.4.2.3": 64}

// Bounds of a credential authorization's free text and hash list.
const (
	maxDescription = 500
	maxHashesParam = 8 << 10
)

// signingPINField is the form field of the signing PIN.
const signingPINField = "signing_pin"

// parseCSCRequest validates a CSC authorization request.
func (p *Provider) parseCSCRequest(r *http.Request, form url.Values) (*Client, *AuthRequest, *authError) {
	c, aerr := p.requestClient(r.Context(), form)
	if aerr != nil {
		return c, nil, aerr
	}
	req := &AuthRequest{ClientID: c.ID, RedirectURI: form.Get("redirect_uri"), State: form.Get("state"), CodeChallenge: form.Get("code_challenge"), Kind: KindCSC}
	fail := func(code, desc string) (*Client, *AuthRequest, *authError) {
		return c, req, &authError{code: code, desc: desc, redirect: true}
	}
	for _, k := range cscParams {
		if len(form[k]) > 1 {
			return fail(errInvalidRequest, "parameter "+k+" repeated")
		}
		if limit := maxParamLen; k != "hashes" && k != "description" && len(form.Get(k)) > limit {
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
	case form.Get("authorization_details") != "":
		return fail(errInvalidRequest, "authorization_details is not supported: use scope=credential with credentialID, numSignatures, hashes and hashAlgorithmOID")
	case form.Get("code_challenge_method") != "S256":
		return fail(errInvalidRequest, "PKCE is required with code_challenge_method=S256")
	case !validChallenge(req.CodeChallenge):
		return fail(errInvalidRequest, "code_challenge must be the 43-character base64url SHA-256 of the verifier")
	case strings.Contains(" "+form.Get("prompt")+" ", " none "):
		return fail(errLoginRequired, "the citizen must authenticate interactively")
	}
	switch req.Scope = form.Get("scope"); req.Scope {
	case auth.ScopeService:
		return c, req, nil
	case auth.ScopeCredential:
	default:
		return fail(errInvalidScope, "scope must be service or credential (one of them, alone)")
	}
	cr, desc := p.parseCredentialRequest(form)
	if desc != "" {
		return fail(errInvalidRequest, desc)
	}
	req.Credential = cr
	return c, req, nil
}

// parseCredentialRequest reads the parameters of a credential
// authorization; desc says what is wrong with them.
func (p *Provider) parseCredentialRequest(form url.Values) (*CredentialRequest, string) {
	cr := &CredentialRequest{CredentialID: form.Get("credentialID"), HashAlgorithmOID: form.Get("hashAlgorithmOID"), Description: form.Get("description")}
	size, known := hashSizes[cr.HashAlgorithmOID]
	n, err := strconv.Atoi(form.Get("numSignatures"))
	max := p.cfg.Signing.MaxHashes
	switch {
	case cr.CredentialID == "" && form.Get("signatureQualifier") != "":
		return nil, "signatureQualifier is not supported: name the credentialID"
	case cr.CredentialID == "" || len(cr.CredentialID) > 64:
		return nil, "scope credential needs the credentialID"
	case err != nil || n < 1 || n > max:
		return nil, fmt.Sprintf("numSignatures must be 1 to %d", max)
	case !known:
		return nil, "hashAlgorithmOID must be the OID of SHA-256, SHA-384 or SHA-512"
	case len(form.Get("hashes")) > maxHashesParam:
		return nil, "parameter hashes too long"
	case len([]rune(cr.Description)) > maxDescription:
		return nil, fmt.Sprintf("description is longer than %d characters", maxDescription)
	}
	cr.NumSignatures = n
	for i, s := range strings.Split(form.Get("hashes"), ",") {
		h, err := decodeHash(strings.TrimSpace(s))
		if err != nil || len(h) != size {
			return nil, fmt.Sprintf("hashes[%d] is not a base64url hash of the algorithm hashAlgorithmOID names", i)
		}
		cr.Hashes = append(cr.Hashes, h)
	}
	if len(cr.Hashes) != n {
		return nil, fmt.Sprintf("numSignatures (%d) must equal the number of hashes (%d)", n, len(cr.Hashes))
	}
	return cr, ""
}

// decodeHash reads one hash of the comma-separated hashes parameter:
// base64url (section 8.4.2), with or without padding; plain base64 is
// accepted too.
func decodeHash(s string) ([]byte, error) {
	for _, enc := range []*base64.Encoding{base64.RawURLEncoding, base64.URLEncoding, base64.StdEncoding, base64.RawStdEncoding} {
		if b, err := enc.DecodeString(s); err == nil {
			return b, nil
		}
	}
	return nil, errors.New("not base64")
}

// cscAuthorize serves the CSC authorization endpoint: it validates the
// request, logs in a citizen with a client certificate at once (and, for
// scope credential, asks for the signing PIN on the same connection),
// shows the mobile ID form otherwise, and starts a mobile login when the
// form comes back (complete takes it from there).
func (p *Provider) cscAuthorize(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, maxFormBytes)
	if err := r.ParseForm(); err != nil {
		renderPage(w, http.StatusBadRequest, "error", errorPage{Error: "malformed request"})
		return
	}
	form := r.Form
	if r.Method == http.MethodPost {
		form = r.PostForm
	}
	c, req, aerr := p.parseCSCRequest(r, form)
	if aerr != nil {
		if err := p.auditAuthorizeRefusal(r, ActionCSCAuthorize, form.Get("client_id"), map[string]any{
			"error": aerr.code, "reason": aerr.desc, "redirectURI": form.Get("redirect_uri"), "scope": form.Get("scope"), "remote": r.RemoteAddr,
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
		p.cscMTLS(w, r, c, req, form)
		return
	}
	if r.Method == http.MethodPost && form.Has("civil_number") {
		p.startMobile(w, r, c, req, form)
		return
	}
	p.showLogin(w, c, form, KindCSC, "", http.StatusOK)
}

// cscMTLS logs in the holder of the TLS client certificate for the CSC
// API; for scope credential the signing PIN comes back in a POST on the
// same connection (the certificate is checked again).
func (p *Provider) cscMTLS(w http.ResponseWriter, r *http.Request, c *Client, req *AuthRequest, form url.Values) {
	if req.Credential == nil {
		p.mtlsLogin(w, r, c, req)
		return
	}
	ctx := r.Context()
	citizen, ok := p.mtlsCitizen(w, r, c, req)
	if !ok {
		return
	}
	if err := p.cfg.Signing.Credentials.CheckCredential(ctx, citizen.CivilNumber, req.Credential.CredentialID); err != nil {
		p.credentialRefused(w, r, c, req, citizen, MethodMTLS, err)
		return
	}
	hidden := map[string]string{}
	for _, k := range cscParams {
		if v := form.Get(k); v != "" {
			hidden[k] = v
		}
	}
	page := p.pinPage(c, req, p.endpoint(PathCSCAuthorize), hidden)
	if r.Method != http.MethodPost || !r.PostForm.Has(signingPINField) {
		renderPage(w, http.StatusOK, "signing-pin", page)
		return
	}
	if err := p.checkSigningPIN(r, c, req, citizen); err != nil {
		p.pinRefused(w, r, c, req, citizen, MethodMTLS, page, err)
		return
	}
	p.issueCode(w, r, c, req, citizen, MethodMTLS, p.now(), false)
}

// checkSigningPIN asks the signing service to check the PIN of the form
// for the credential authorization req of citizen. A PIN that cannot be one
// (empty, longer than 64 bytes) goes no further: its refusal is recorded
// here, and a refusal that cannot be recorded is a failure.
func (p *Provider) checkSigningPIN(r *http.Request, c *Client, req *AuthRequest, citizen Citizen) error {
	value := r.PostForm.Get(signingPINField)
	if value == "" || len(value) > 64 {
		if err := p.audit(r.Context(), citizen.CivilNumber, ActionCSCAuthorize, c.ID, "refused", map[string]any{
			"credential": req.Credential.CredentialID, "scope": req.Scope, "reason": "no signing PIN, or one longer than 64 characters",
		}); err != nil {
			return fmt.Errorf("recording a refused signing PIN: %w", err)
		}
		return ErrWrongPIN
	}
	return p.cfg.Signing.Credentials.CheckSigningPIN(r.Context(), citizen.CivilNumber, c.ID, req.Credential, value)
}

// pinRefused answers a refused signing PIN: the PIN page again for a wrong
// PIN, the client's redirect URI with access_denied for a locked or
// unusable credential, server_error when the check failed. The signing
// service recorded the check; a login that ends here is recorded too.
func (p *Provider) pinRefused(w http.ResponseWriter, r *http.Request, c *Client, req *AuthRequest, citizen Citizen, method string, page signingPINPage, err error) {
	switch {
	case errors.Is(err, ErrWrongPIN):
		page.Error = "Wrong signing PIN. رمز التوقيع غير صحيح."
		renderPage(w, http.StatusForbidden, "signing-pin", page)
	case errors.Is(err, ErrPINLocked), errors.Is(err, ErrCredentialUnusable):
		p.credentialRefused(w, r, c, req, citizen, method, err)
	default:
		_ = p.loginFailed(r.Context(), method, c.ID, citizen.CivilNumber, map[string]any{"certSerial": citizen.CertSerial, "scope": req.Scope}, err) // a failure either way
		p.redirectError(w, r, req, errServerError, "temporarily unable to check the signing PIN")
	}
}

// credentialRefused ends a credential authorization whose credential
// cannot be used (unknown, another's, expired, revoked, no PIN, locked):
// recorded as a refused login, access_denied to the client.
func (p *Provider) credentialRefused(w http.ResponseWriter, r *http.Request, c *Client, req *AuthRequest, citizen Citizen, method string, err error) {
	desc := "the credential cannot be used by this citizen"
	switch {
	case errors.Is(err, ErrPINLocked):
		desc = "the signing PIN of the credential is locked after too many wrong tries"
	case !errors.Is(err, ErrCredentialUnusable):
		_ = p.loginFailed(r.Context(), method, c.ID, citizen.CivilNumber, map[string]any{"certSerial": citizen.CertSerial, "scope": req.Scope}, err) // a failure either way
		p.redirectError(w, r, req, errServerError, "temporarily unable to check the credential")
		return
	}
	if aerr := p.loginFailed(r.Context(), method, c.ID, citizen.CivilNumber, map[string]any{"certSerial": citizen.CertSerial, "scope": req.Scope,
		"credential": req.Credential.CredentialID}, refuse("%s", err.Error())); aerr != nil {
		p.refusalUnrecorded(w, r, req, true)
		return
	}
	p.redirectError(w, r, req, errAccessDenied, desc)
}

// pinPage describes a credential authorization for the citizen: who asks,
// with which credential, what exactly is signed.
func (p *Provider) pinPage(c *Client, req *AuthRequest, action string, hidden map[string]string) signingPINPage {
	page := signingPINPage{ClientName: c.Name, Credential: req.Credential.CredentialID, Count: req.Credential.NumSignatures,
		Description: req.Credential.Description, Action: action, Hidden: hidden}
	for _, h := range req.Credential.Hashes {
		page.Hashes = append(page.Hashes, hex.EncodeToString(h))
	}
	return page
}

// mobileCredentialStep is complete's step for an approved mobile login of
// a credential authorization: the PIN page, then the PIN. The login stays
// approved until the PIN is right; a locked or unusable credential denies
// it.
func (p *Provider) mobileCredentialStep(w http.ResponseWriter, r *http.Request, l *Login, c *Client, key string) {
	ctx := r.Context()
	citizen := *l.Citizen
	if p.now().After(l.Expires.Add(p.cfg.LoginLifetime)) {
		renderPage(w, http.StatusBadRequest, "error", errorPage{Error: "this authorization expired; start again from the signing application"})
		return
	}
	deny := func(err error) {
		l.State, l.Reason = LoginDenied, err.Error()
		if uerr := p.cfg.Store.UpdateLogin(context.WithoutCancel(ctx), l, LoginApproved); uerr != nil && !errors.Is(uerr, ErrConflict) {
			p.log.ErrorContext(ctx, "recording a denied login", "err", uerr)
		}
	}
	if err := p.cfg.Signing.Credentials.CheckCredential(ctx, citizen.CivilNumber, l.Request.Credential.CredentialID); err != nil {
		deny(err)
		p.credentialRefused(w, r, c, &l.Request, citizen, MethodMobile, err)
		return
	}
	page := p.pinPage(c, &l.Request, p.endpoint(PathComplete), map[string]string{"login": l.ID, "key": key})
	if !r.PostForm.Has(signingPINField) {
		renderPage(w, http.StatusOK, "signing-pin", page)
		return
	}
	if err := p.checkSigningPIN(r, c, &l.Request, citizen); err != nil {
		if !errors.Is(err, ErrWrongPIN) {
			deny(err)
		}
		p.pinRefused(w, r, c, &l.Request, citizen, MethodMobile, page, err)
		return
	}
	l.State = LoginUsed
	if err := p.cfg.Store.UpdateLogin(ctx, l, LoginApproved); err != nil {
		renderPage(w, http.StatusConflict, "error", errorPage{Error: "this authorization was already completed"})
		return
	}
	// The approval was audited, and the PIN check by the signing service.
	p.issueCode(w, r, c, &l.Request, citizen, MethodMobile, l.AuthTime, true)
}
