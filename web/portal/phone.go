package portal

import (
	"bytes"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"time"

	"github.com/thiqa/thiqa/internal/audit"
	"github.com/thiqa/thiqa/internal/auth"
	"github.com/thiqa/thiqa/policies"
)

// The phone side of mobile ID: /my/approve lists the citizen's pending
// logins with their verification codes and approves one with the login
// PIN (under number matching, identity.mobile.numberMatching, the list
// carries no codes: the page asks the citizen to type the one their
// browser shows, and sends it with the PIN), through GET /oidc/mobile/sessions and POST /oidc/mobile/approve as
// the citizen. Its "deny all" button ends every pending login at once
// (POST /oidc/mobile/deny-all): logins someone else started with the
// citizen's number, which under number matching the citizen can neither
// approve nor otherwise clear. The phone signs in with the citizen's own API credential
// (what the Thiqa app holds: a client certificate, or a token pasted
// once), or uses the browser's portal session.

// pendingView is one login waiting for the phone.
type pendingView struct {
	Session, Code, Client string
	Expires               time.Time
	// Shares is what approving gives the portal, in the page's language
	// (the list's shares).
	Shares []string
	// Match: the list gave no code (number matching): the citizen types it.
	Match bool
}

// phoneHome lists the pending logins, or asks the phone to sign in.
func (p *Portal) phoneHome(w http.ResponseWriter, r *http.Request, v *view) {
	who, _ := v.who()
	if who == nil {
		var ok bool
		if who, ok = v.phoneByCertificate(); !ok {
			return
		}
		if who == nil {
			v.render(http.StatusOK, "phone_login", "phone.title", nil)
			return
		}
	}
	if !who.Has(policies.RoleCitizen) || who.CivilNumber == "" {
		v.failRecorded(p.auditRefusal(r, v.se, "web.approve", "the phone page is for citizens"), http.StatusForbidden, "err.not_citizen")
		return
	}
	list, ok := v.pending(who)
	if !ok {
		return
	}
	// The page never reloads itself (it did every 5 s while nothing was
	// pending): each reload threw a screen reader's or a keyboard's place
	// back to the top (WCAG 2.2.1). Its Refresh button asks again.
	v.render(http.StatusOK, "phone_home", "phone.title", map[string]any{"Pending": list})
}

// pending lists who's pending logins (GET /oidc/mobile/sessions); on a
// failure it has answered and ok is false.
func (v *view) pending(who *auth.Principal) (list []pendingView, ok bool) {
	ans, err := v.call(who, http.MethodGet, "/oidc/mobile/sessions", "", nil, nil, 1<<20)
	if err != nil {
		v.apiFail(err)
		return nil, false
	}
	if !ans.ok() {
		v.failText(ans.status, v.apiMessage(ans))
		return nil, false
	}
	var pend []struct {
		Session          string    `json:"session"`
		VerificationCode *string   `json:"verificationCode"`
		ClientName       string    `json:"clientName"`
		ClientID         string    `json:"clientID"`
		Expires          time.Time `json:"expires"`
		Shares           []struct {
			EN string `json:"en"`
			AR string `json:"ar"`
		} `json:"shares"`
	}
	if err := json.Unmarshal(ans.body, &pend); err != nil {
		v.apiFail(err)
		return nil, false
	}
	for _, s := range pend {
		name := s.ClientName
		if name == "" {
			name = s.ClientID
		}
		pv := pendingView{Session: s.Session, Client: name, Expires: s.Expires, Match: s.VerificationCode == nil}
		if s.VerificationCode != nil {
			pv.Code = *s.VerificationCode
		}
		for _, sh := range s.Shares {
			text := sh.EN
			if v.lang == "ar" && sh.AR != "" {
				text = sh.AR
			}
			pv.Shares = append(pv.Shares, text)
		}
		list = append(list, pv)
	}
	return list, true
}

// typedCode is the verification code the citizen typed: spaces trimmed,
// Arabic-Indic digits (an Arabic keyboard's) made ASCII; ok is false when
// it is not a few digits.
func typedCode(s string) (code string, ok bool) {
	code = strings.Map(func(r rune) rune {
		switch {
		case r >= '\u0660' && r <= '\u0669':
			return '0' + r - '\u0660'
		case r >= '\u06F0' && r <= '\u06F9':
			return '0' + r - '\u06F0'
		}
		return r
	}, strings.TrimSpace(s))
	return code, code != "" && len(code) <= 8 && strings.Trim(code, "0123456789") == ""
}

// phoneByCertificate signs the phone in by its client certificate, when
// the browser presented one that authenticates a citizen: recorded
// (web.login) before its session exists, as a sign-in with a token is. A
// certificate that verified but is refused (expired, revoked: it names
// who presented it, and a revoked one in use may be a stolen key) is
// recorded every time and answered 401 on the sign-in page; other
// certificates leave the page as it is, the sign-in form. ok is false
// when the request was answered.
func (v *view) phoneByCertificate() (pr *auth.Principal, ok bool) {
	if v.r.TLS == nil || len(v.r.TLS.PeerCertificates) == 0 {
		return nil, true
	}
	req := v.r.Clone(v.r.Context())
	req.Header.Del("Authorization")
	pr, err := v.p.o.Authenticate(req)
	if auth.Identified(err) {
		key := "err.credentials"
		if errors.Is(err, auth.ErrCertificateExpired) {
			key = "err.credentials_expired"
		}
		if aerr := v.p.recordRefusal(v.r, v.se, "web.login", "credentials refused: "+err.Error(), false); aerr != nil {
			v.failRecorded(aerr, 0, "")
			return nil, false
		}
		v.renderStatus(http.StatusUnauthorized, "phone_login", "phone.title", map[string]any{"Error": v.t(key)})
		return nil, false
	}
	if err != nil || !pr.Has(policies.RoleCitizen) || pr.Grant != nil {
		return nil, true
	}
	// The sign-in is recorded before its session exists: without the
	// record there is no session.
	if _, aerr := v.p.o.Audit.Append(v.r.Context(), audit.Entry{Actor: pr.Subject, Action: "web.login", Object: v.r.URL.Path, Outcome: audit.OutcomeSuccess,
		Details: map[string]any{"kind": "phone", "caller": pr.Caller(), "remote": v.r.RemoteAddr}}); aerr != nil {
		v.p.log.ErrorContext(v.r.Context(), "audit append failed", "err", aerr)
		v.fail(http.StatusInternalServerError, "err.unavailable")
		return nil, false
	}
	se, value := v.p.ses.login(v.se, pr, "phone")
	v.se = se
	setCookie(v.w, v.p.o.Secure, value)
	return pr, true
}

// phoneLogin signs the phone in with the citizen's API token.
func (p *Portal) phoneLogin(w http.ResponseWriter, r *http.Request, v *view) {
	pr, ok := v.tokenLogin(policies.RoleCitizen, "phone")
	if !ok {
		return
	}
	_ = pr
	v.redirect("/my/approve")
}

// tokenLogin authenticates the token of the form (field "token") as a
// bearer credential, requires role, and binds a fresh session of kind to
// it. On a refusal it has answered (and audited) and ok is false.
func (v *view) tokenLogin(role policies.Role, kind string) (*auth.Principal, bool) {
	raw := strings.TrimSpace(v.r.PostFormValue("token"))
	var pr *auth.Principal
	var err error
	if raw != "" {
		req, _ := http.NewRequestWithContext(v.r.Context(), http.MethodGet, "/", nil)
		req.RemoteAddr = v.r.RemoteAddr
		req.Header.Set("Authorization", "Bearer "+raw)
		pr, err = v.p.o.Authenticate(req)
	} else if v.r.TLS != nil && len(v.r.TLS.PeerCertificates) > 0 {
		req := v.r.Clone(v.r.Context())
		req.Header.Del("Authorization")
		pr, err = v.p.o.Authenticate(req)
	} else {
		err = auth.ErrNoCredentials
	}
	if err != nil {
		key := "err.credentials"
		if errors.Is(err, auth.ErrTokenExpired) || errors.Is(err, auth.ErrCertificateExpired) {
			key = "err.credentials_expired"
		}
		// Credentials that verified but are refused (expired, revoked)
		// name who presented them: recorded every time, not within the
		// budget of anonymous visitors' refusals.
		if aerr := v.p.recordRefusal(v.r, v.se, "web.login", "credentials refused: "+err.Error(), !auth.Identified(err)); aerr != nil {
			v.failRecorded(aerr, 0, "")
			return nil, false
		}
		v.renderStatus(http.StatusUnauthorized, kind+"_login", kind+".title", map[string]any{"Error": v.t(key)})
		return nil, false
	}
	// A delegated access token (the CSC API's, of scope service or
	// credential) was given to an app for that API alone: it opens no
	// portal session, which would list and manage the citizen's
	// credentials.
	if reason, key := "role "+string(role)+" required", "err.role_"+kind; !pr.Has(role) || pr.Grant != nil {
		if pr.Grant != nil {
			reason, key = "a delegated access token (scope "+pr.Grant.Scope+") does not sign in to the portal", "err.delegated_token"
		}
		if _, aerr := v.p.o.Audit.Append(v.r.Context(), audit.Entry{Actor: pr.Subject, Action: "web.login", Object: v.r.URL.Path, Outcome: audit.OutcomeRefused,
			Details: map[string]any{"reason": reason, "caller": pr.Caller(), "remote": v.r.RemoteAddr}}); aerr != nil {
			v.p.log.ErrorContext(v.r.Context(), "audit append failed", "err", aerr)
			v.failRecorded(aerr, 0, "")
			return nil, false
		}
		v.renderStatus(http.StatusForbidden, kind+"_login", kind+".title", map[string]any{"Error": v.t(key)})
		return nil, false
	}
	// The sign-in is recorded before its session exists: without the
	// record there is no session.
	if _, aerr := v.p.o.Audit.Append(v.r.Context(), audit.Entry{Actor: pr.Subject, Action: "web.login", Object: v.r.URL.Path, Outcome: audit.OutcomeSuccess,
		Details: map[string]any{"kind": kind, "caller": pr.Caller(), "remote": v.r.RemoteAddr}}); aerr != nil {
		v.p.log.ErrorContext(v.r.Context(), "audit append failed", "err", aerr)
		v.fail(http.StatusInternalServerError, "err.unavailable")
		return nil, false
	}
	se, value := v.p.ses.login(v.se, pr, kind)
	v.se = se
	setCookie(v.w, v.p.o.Secure, value)
	return pr, true
}

// phoneApprove approves one pending login with the login PIN.
func (p *Portal) phoneApprove(w http.ResponseWriter, r *http.Request, v *view) {
	who, _ := v.who()
	if who == nil || !who.Has(policies.RoleCitizen) {
		v.fail(http.StatusUnauthorized, "err.session_expired")
		return
	}
	code, match := r.PostFormValue("code"), r.PostFormValue("match") == "1"
	if match {
		// Number matching: the code typed from the other screen. One that
		// is not digits is no try: the page again, the error at the field.
		typed, ok := typedCode(code)
		if !ok {
			list, ok := v.pending(who)
			if !ok {
				return
			}
			v.render(http.StatusBadRequest, "phone_home", "phone.title", map[string]any{"Pending": list, "Error": v.t("err.code_format"), "CodeFor": r.PostFormValue("session")})
			return
		}
		code = typed
	}
	body, _ := json.Marshal(map[string]string{"session": r.PostFormValue("session"), "verificationCode": code, "pin": r.PostFormValue("pin")})
	ans, err := v.call(who, http.MethodPost, "/oidc/mobile/approve", "application/json", bytes.NewReader(body), nil, 1<<20)
	if err != nil {
		v.apiFail(err)
		return
	}
	if !ans.ok() {
		if match && ans.status == http.StatusForbidden && problemType(ans.body) == problemWrongCode {
			v.flash("err.code_wrong", "error")
		} else {
			v.flashAPI(ans)
		}
		v.redirect("/my/approve")
		return
	}
	v.flash("phone.approved", "ok")
	v.redirect("/my/approve")
}

// phoneDenyAll denies every pending login of the citizen
// (POST /oidc/mobile/deny-all as the citizen; the provider audits it).
func (p *Portal) phoneDenyAll(w http.ResponseWriter, r *http.Request, v *view) {
	who, _ := v.who()
	if who == nil || !who.Has(policies.RoleCitizen) {
		v.fail(http.StatusUnauthorized, "err.session_expired")
		return
	}
	ans, err := v.call(who, http.MethodPost, "/oidc/mobile/deny-all", "application/json", strings.NewReader("{}"), nil, 1<<20)
	if err != nil {
		v.apiFail(err)
		return
	}
	if !ans.ok() {
		v.flashAPI(ans)
		v.redirect("/my/approve")
		return
	}
	v.flash("phone.denied_all", "ok")
	v.redirect("/my/approve")
}
