package portal

// The credential life cycle on the pages (issue 16's API): the citizen
// changes a PIN, activates one with an activation code, renews a
// certificate; the officer lists what expires soon, renews, and resets a
// PIN (the activation code is shown once, on the answer page only).

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/thiqa/thiqa/internal/auth"
)

// ownCredential is one entry of GET /api/v1/credentials?owner=self.
type ownCredential struct {
	CredentialID  string    `json:"credentialID"`
	Kind          string    `json:"kind"`
	Profile       string    `json:"profile"`
	CertSerial    string    `json:"certSerial"`
	NotAfter      time.Time `json:"notAfter"`
	ExpiresInDays int       `json:"expiresInDays"`
	PIN           string    `json:"pin"`
	// CertStatus is valid, expired or revoked (empty from a service
	// that does not say).
	CertStatus string `json:"certStatus"`
}

// ownCredentials lists the caller's own credentials (signing and mobile
// ID) through GET /api/v1/credentials?owner=self.
func (v *view) ownCredentials(who *auth.Principal) ([]ownCredential, error) {
	ans, err := v.call(who, http.MethodGet, "/api/v1/credentials?owner=self", "", nil, nil, 4<<20)
	if err != nil {
		return nil, err
	}
	if !ans.ok() {
		return nil, &apiError{status: ans.status, detail: problemDetail(ans.body)}
	}
	var out struct {
		Credentials []ownCredential `json:"credentials"`
	}
	if err := json.Unmarshal(ans.body, &out); err != nil {
		return nil, err
	}
	return out.Credentials, nil
}

// ownedBy reports whether id is one of the citizen's own credentials
// (signing or mobile ID); the page never acts on another.
func (v *view) ownedBy(who *auth.Principal, id string) (*ownCredential, error) {
	list, err := v.ownCredentials(who)
	if err != nil {
		return nil, err
	}
	for i := range list {
		if list[i].CredentialID == id {
			return &list[i], nil
		}
	}
	return nil, nil
}

// myOwn checks the credential of the form is the citizen's; on a refusal
// it has answered (and audited) and returns nil.
func (v *view) myOwn(who *auth.Principal, action string) *ownCredential {
	id := v.r.PostFormValue("credential")
	own, err := v.ownedBy(who, id)
	if err != nil {
		v.apiFail(err)
		return nil
	}
	if own == nil {
		v.failRecorded(v.p.auditRefusal(v.r, v.se, action, "credential "+id+" is not the citizen's"), http.StatusForbidden, "err.not_yours")
		return nil
	}
	return own
}

// postJSON calls a JSON route as who.
func (v *view) postJSON(who *auth.Principal, path string, body any) (*apiAnswer, error) {
	raw, _ := json.Marshal(body)
	return v.call(who, http.MethodPost, path, "application/json", bytes.NewReader(raw), nil, 1<<20)
}

// afterAction flashes the outcome of ans and returns to back.
func (v *view) afterAction(ans *apiAnswer, err error, okKey, back string) {
	if err != nil {
		v.apiFail(err)
		return
	}
	if !ans.ok() {
		v.flashAPI(ans)
	} else {
		v.flash(okKey, "ok")
	}
	v.redirect(back)
}

// myPINChange changes a PIN: the old one and the new one twice.
func (p *Portal) myPINChange(w http.ResponseWriter, r *http.Request, v *view) {
	who := v.citizen()
	if who == nil {
		return
	}
	own := v.myOwn(who, "web.pin")
	if own == nil {
		return
	}
	if r.PostFormValue("new") != r.PostFormValue("new2") {
		v.flash("err.pin_mismatch", "error")
		v.redirect("/my/")
		return
	}
	ans, err := v.postJSON(who, "/api/v1/credentials/"+url.PathEscape(own.CredentialID)+"/pin/change",
		map[string]string{"old": r.PostFormValue("old"), "new": r.PostFormValue("new")})
	v.afterAction(ans, err, "pin.changed", "/my/")
}

// myPINActivate sets a PIN with the activation code an officer gave (a
// reset, or a mobile ID enrolled for activation).
func (p *Portal) myPINActivate(w http.ResponseWriter, r *http.Request, v *view) {
	who := v.citizen()
	if who == nil {
		return
	}
	own := v.myOwn(who, "web.pin")
	if own == nil {
		return
	}
	if r.PostFormValue("pin") != r.PostFormValue("pin2") {
		v.flash("err.pin_mismatch", "error")
		v.redirect("/my/")
		return
	}
	ans, err := v.postJSON(who, "/api/v1/credentials/"+url.PathEscape(own.CredentialID)+"/pin/activate",
		map[string]string{"activationCode": strings.TrimSpace(r.PostFormValue("code")), "pin": r.PostFormValue("pin")})
	v.afterAction(ans, err, "pin.activated", "/my/")
}

// myRenew renews one of the citizen's certificates (same key; the service
// says when it is not allowed).
func (p *Portal) myRenew(w http.ResponseWriter, r *http.Request, v *view) {
	who := v.citizen()
	if who == nil {
		return
	}
	own := v.myOwn(who, "web.renew")
	if own == nil {
		return
	}
	ans, err := v.postJSON(who, "/api/v1/certificates/"+url.PathEscape(own.CertSerial)+"/renew", map[string]any{})
	v.afterAction(ans, err, "renew.done", "/my/")
}

// expiringView is one entry of the officer's expiry list.
type expiringView struct {
	// CommonName names the holder; Subject (the RFC 4514 DN, with some
	// names as OIDs and hex) is shown only when there is none.
	Serial, CA, Profile, Subject, CommonName, CredentialID string
	NotAfter                                               time.Time
}

// expiring lists the valid certificates that expire within 30 days (GET
// /api/v1/certificates?expiringWithin=30d); nil when the list cannot be
// read (the console still works).
func (v *view) expiring(who *auth.Principal) []expiringView {
	ans, err := v.call(who, http.MethodGet, "/api/v1/certificates?expiringWithin=30d&limit=50", "", nil, nil, 4<<20)
	if err != nil || !ans.ok() {
		return nil
	}
	var out struct {
		Certificates []expiringView `json:"certificates"`
	}
	if json.Unmarshal(ans.body, &out) != nil {
		return nil
	}
	return out.Certificates
}

// raRenew renews a certificate as the officer (same key, or a new key on
// the token with rekey=yes).
func (p *Portal) raRenew(w http.ResponseWriter, r *http.Request, v *view) {
	who := v.officer()
	if who == nil {
		return
	}
	serial := strings.ToLower(r.PostFormValue("serial"))
	if !serialPattern.MatchString(serial) {
		v.fail(http.StatusBadRequest, "err.bad_serial")
		return
	}
	body := map[string]any{}
	if r.PostFormValue("rekey") == "yes" {
		body["rekey"] = true
	}
	ans, err := v.postJSON(who, "/api/v1/certificates/"+url.PathEscape(serial)+"/renew", body)
	if err != nil {
		v.apiFail(err)
		return
	}
	if !ans.ok() {
		v.flashAPI(ans)
		v.redirect("/ra/certificate?serial=" + url.QueryEscape(serial))
		return
	}
	var out struct {
		Serial string `json:"serial"`
	}
	_ = json.Unmarshal(ans.body, &out)
	v.flash("renew.done", "ok")
	v.redirect("/ra/certificate?serial=" + url.QueryEscape(out.Serial))
}

// raPINReset resets a credential's PIN and shows the activation code once.
func (p *Portal) raPINReset(w http.ResponseWriter, r *http.Request, v *view) {
	who := v.officer()
	if who == nil {
		return
	}
	id, serial := r.PostFormValue("credential"), strings.ToLower(r.PostFormValue("serial"))
	if id == "" || len(id) > 64 || !serialPattern.MatchString(serial) {
		v.fail(http.StatusBadRequest, "err.bad_form")
		return
	}
	if r.PostFormValue("confirm") != "yes" {
		v.render(http.StatusOK, "officer_pin_reset", "pinreset.title", map[string]any{"Credential": id, "Serial": serial})
		return
	}
	ans, err := v.postJSON(who, "/api/v1/credentials/"+url.PathEscape(id)+"/pin/reset", map[string]any{})
	if err != nil {
		v.apiFail(err)
		return
	}
	if !ans.ok() {
		v.flashAPI(ans)
		v.redirect("/ra/certificate?serial=" + url.QueryEscape(serial))
		return
	}
	var out struct {
		ActivationCode string    `json:"activationCode"`
		ExpiresAt      time.Time `json:"expiresAt"`
		Kind           string    `json:"kind"`
	}
	_ = json.Unmarshal(ans.body, &out)
	v.render(http.StatusOK, "officer_pin_code", "pinreset.title", map[string]any{"Credential": id, "Serial": serial, "Code": out.ActivationCode, "Expires": out.ExpiresAt})
}
