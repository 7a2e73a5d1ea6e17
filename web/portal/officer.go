package portal

import (
	"bytes"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/thiqa/thiqa/internal/auth"
	"github.com/thiqa/thiqa/policies"
)

// officer returns the signed-in registration officer, or shows the
// sign-in page; anyone else signed in is refused and audited.
func (v *view) officer() *auth.Principal {
	who, kind := v.who()
	if who == nil {
		v.render(http.StatusOK, "officer_login", "officer.title", nil)
		return nil
	}
	if kind != "officer" || !who.Has(policies.RoleRegistrationOfficer) {
		v.failRecorded(v.p.auditRefusal(v.r, v.se, "web.ra", "the console is for registration officers"), http.StatusForbidden, "err.not_officer")
		return nil
	}
	return who
}

// raLogin signs an officer in with an officer token or client certificate.
func (p *Portal) raLogin(w http.ResponseWriter, r *http.Request, v *view) {
	if _, ok := v.tokenLogin(policies.RoleRegistrationOfficer, "officer"); ok {
		v.redirect("/ra/")
	}
}

// raHome is the console: look a certificate up, issue one.
func (p *Portal) raHome(w http.ResponseWriter, r *http.Request, v *view) {
	who := v.officer()
	if who == nil {
		return
	}
	v.render(http.StatusOK, "officer_home", "officer.title", map[string]any{"Expiring": v.expiring(who)})
}

// serialPattern is what a serial number may look like (hex).
var serialPattern = regexp.MustCompile(`^[0-9a-fA-F]{1,64}$`)

// certificateView is a certificate on the officer's page.
type certificateView struct {
	Serial, CA, Profile, Status, RevocationReason string
	Subject, Issuer                               string
	SubjectFields                                 [][2]string
	NotBefore, NotAfter                           time.Time
	RevokedAt                                     *time.Time
	PEM                                           string
	// CredentialID names the credential of a key on the token.
	CredentialID string
}

// raCertificate shows one certificate (GET /api/v1/certificates/{serial}).
func (p *Portal) raCertificate(w http.ResponseWriter, r *http.Request, v *view) {
	who := v.officer()
	if who == nil {
		return
	}
	serial := strings.ToLower(strings.TrimSpace(r.URL.Query().Get("serial")))
	if !serialPattern.MatchString(serial) {
		v.fail(http.StatusBadRequest, "err.bad_serial")
		return
	}
	c, ok := v.certificate(who, serial)
	if !ok {
		return
	}
	v.render(http.StatusOK, "officer_certificate", "officer.title", map[string]any{"Cert": c, "Reasons": officerReasons, "Trail": v.trail(who, serial)})
}

// certificate reads one certificate as who; on a refusal it has answered.
func (v *view) certificate(who *auth.Principal, serial string) (*certificateView, bool) {
	ans, err := v.call(who, http.MethodGet, "/api/v1/certificates/"+url.PathEscape(serial), "", nil, nil, 1<<20)
	if err != nil {
		v.apiFail(err)
		return nil, false
	}
	if ans.status == http.StatusNotFound {
		v.fail(http.StatusNotFound, "err.cert_not_found")
		return nil, false
	}
	if !ans.ok() {
		v.failText(ans.status, v.apiMessage(ans))
		return nil, false
	}
	var in struct {
		Serial           string     `json:"serial"`
		CA               string     `json:"ca"`
		Profile          string     `json:"profile"`
		Certificate      string     `json:"certificate"`
		Status           string     `json:"status"`
		NotBefore        time.Time  `json:"notBefore"`
		NotAfter         time.Time  `json:"notAfter"`
		RevokedAt        *time.Time `json:"revokedAt"`
		RevocationReason *int       `json:"revocationReason"`
		CredentialID     string     `json:"credentialID"`
	}
	if err := json.Unmarshal(ans.body, &in); err != nil {
		v.apiFail(err)
		return nil, false
	}
	c := &certificateView{Serial: in.Serial, CA: in.CA, Profile: in.Profile, Status: in.Status, NotBefore: in.NotBefore, NotAfter: in.NotAfter,
		RevokedAt: in.RevokedAt, PEM: in.Certificate, CredentialID: in.CredentialID}
	if in.RevocationReason != nil && *in.RevocationReason >= 0 && *in.RevocationReason < len(reasonNames) {
		c.RevocationReason = reasonNames[*in.RevocationReason]
	}
	if blk, _ := pem.Decode([]byte(in.Certificate)); blk != nil {
		if cert, err := x509.ParseCertificate(blk.Bytes); err == nil {
			c.Subject, c.Issuer = cert.Subject.String(), cert.Issuer.CommonName
			for _, a := range cert.Subject.Names {
				if name, ok := attributeNames[a.Type.String()]; ok {
					if s, ok := a.Value.(string); ok {
						c.SubjectFields = append(c.SubjectFields, [2]string{name, s})
					}
				}
			}
		}
	}
	return c, true
}

// attributeNames are the subject attributes shown, by OID.
var attributeNames = map[string]string{
	"2.5.4.3": "commonName", "2.5.4.4": "surname", "2.5.4.42": "givenName", "2.5.4.5": "serialNumber",
	"2.5.4.6": "country", "2.5.4.10": "organizationName", "2.5.4.97": "organizationIdentifier",
}

// reasonNames are the RFC 5280 CRLReason names by code (6 is unused).
var reasonNames = []string{"unspecified", "keyCompromise", "caCompromise", "affiliationChanged", "superseded", "cessationOfOperation", "certificateHold", "", "removeFromCRL", "privilegeWithdrawn", "aACompromise"}

// officerReasons are the reasons an officer may give.
var officerReasons = []string{"keyCompromise", "affiliationChanged", "superseded", "cessationOfOperation", "privilegeWithdrawn", "unspecified"}

// raRevoke revokes a certificate after a confirmation step.
func (p *Portal) raRevoke(w http.ResponseWriter, r *http.Request, v *view) {
	who := v.officer()
	if who == nil {
		return
	}
	serial, reason := strings.ToLower(r.PostFormValue("serial")), r.PostFormValue("reason")
	if !serialPattern.MatchString(serial) || !slices.Contains(officerReasons, reason) {
		v.fail(http.StatusBadRequest, "err.bad_form")
		return
	}
	if r.PostFormValue("confirm") != "yes" {
		c, ok := v.certificate(who, serial)
		if !ok {
			return
		}
		v.render(http.StatusOK, "officer_revoke", "revoke.title", map[string]any{"Cert": c, "Reason": reason})
		return
	}
	body, _ := json.Marshal(map[string]string{"reason": reason})
	ans, err := v.call(who, http.MethodPost, "/api/v1/certificates/"+url.PathEscape(serial)+"/revoke", "application/json", bytes.NewReader(body), nil, 1<<20)
	if err != nil {
		v.apiFail(err)
		return
	}
	if !ans.ok() {
		v.flashAPI(ans)
	} else {
		v.flash("revoke.done", "ok")
	}
	v.redirect("/ra/certificate?serial=" + url.QueryEscape(serial))
}

// issueFields are the subject fields of the issue form, in order.
var issueFields = []string{"givenName", "surname", "commonName", "civilNumber", "country", "organizationName", "organizationIdentifier"}

// issueProfiles are the profiles an officer issues from the console.
var issueProfiles = []string{policies.ProfileCitizenSigning, policies.ProfileCitizenAuth, policies.ProfileOrganisationSeal}

// raIssueForm shows the issue form.
func (p *Portal) raIssueForm(w http.ResponseWriter, r *http.Request, v *view) {
	if v.officer() == nil {
		return
	}
	v.render(http.StatusOK, "officer_issue", "issue.title", map[string]any{"Profiles": issueProfiles, "Fields": issueFields, "Values": map[string]string{"country": p.o.Country}, "KeyInHSM": true})
}

// raIssue issues a certificate through POST /api/v1/certificates.
func (p *Portal) raIssue(w http.ResponseWriter, r *http.Request, v *view) {
	who := v.officer()
	if who == nil {
		return
	}
	profile := r.PostFormValue("profile")
	if !slices.Contains(issueProfiles, profile) {
		v.fail(http.StatusBadRequest, "err.bad_form")
		return
	}
	subject := map[string]string{}
	for _, f := range issueFields {
		if s := strings.TrimSpace(r.PostFormValue(f)); s != "" {
			subject[f] = s
		}
	}
	req := map[string]any{"profile": profile, "subject": subject}
	csr := strings.TrimSpace(r.PostFormValue("csr"))
	if csr != "" {
		req["csr"] = csr
	} else {
		req["keyInHSM"] = true
	}
	body, _ := json.Marshal(req)
	ans, err := v.call(who, http.MethodPost, "/api/v1/certificates", "application/json", bytes.NewReader(body), nil, 1<<20)
	if err != nil {
		v.apiFail(err)
		return
	}
	if !ans.ok() {
		msg, invalid := v.issueRefusal(ans, subject)
		v.renderStatus(ans.status, "officer_issue", "issue.title", map[string]any{"Profiles": issueProfiles, "Fields": issueFields, "Values": subject,
			"Profile": profile, "CSR": csr, "KeyInHSM": csr == "", "Error": msg, "Invalid": invalid})
		return
	}
	var out struct {
		Serial       string `json:"serial"`
		CredentialID string `json:"credentialID"`
		// With signing.pinPolicy.firstPINActivation: the first PIN's
		// one-time code, which the officer hands to the holder.
		ActivationCode          string    `json:"activationCode"`
		ActivationCodeExpiresAt time.Time `json:"activationCodeExpiresAt"`
	}
	_ = json.Unmarshal(ans.body, &out)
	v.render(http.StatusCreated, "officer_issued", "issue.title", map[string]any{"Serial": out.Serial, "Credential": out.CredentialID, "Profile": profile, "Subject": subject,
		"Code": out.ActivationCode, "Expires": out.ActivationCodeExpiresAt})
}

// problemBadSubject is the CA's problem type for subject fields it refuses;
// its errors list their names.
const problemBadSubject = "urn:thiqa:problem:bad-subject"

// issueRefusal is the issue form's message for a refused issuance, and the
// fields to mark. Refused subject fields are named in the page's language
// with what to type (the CA's reasons are English); another refusal
// keeps apiMessage, with the problem's findings.
func (v *view) issueRefusal(ans *apiAnswer, subject map[string]string) (string, map[string]bool) {
	var pd struct {
		Errors []string `json:"errors"`
	}
	if json.Unmarshal(ans.body, &pd) != nil || len(pd.Errors) == 0 {
		return v.apiMessage(ans), nil
	}
	if problemType(ans.body) != problemBadSubject {
		return v.apiMessage(ans) + " — " + strings.Join(pd.Errors, "; "), nil
	}
	invalid := map[string]bool{}
	var parts []string
	for _, f := range pd.Errors {
		if invalid[f] {
			continue
		}
		if !slices.Contains(issueFields, f) {
			// A field the form does not have (another profile's, or
			// one the CA added): named by its code, never left out.
			invalid[f] = true
			parts = append(parts, f+": "+v.t("issue.check.other"))
			continue
		}
		invalid[f] = true
		hint := "issue.check." + f
		if subject[f] == "" {
			hint = "issue.required"
		}
		parts = append(parts, v.t("field."+f)+": "+v.t(hint))
	}
	if len(parts) == 0 {
		return v.apiMessage(ans), nil
	}
	return v.t("issue.bad_subject") + " " + strings.Join(parts, v.t("list.sep")) + ".", invalid
}

// trailEntry is one audit record on the certificate page.
type trailEntry struct {
	Time                           time.Time
	Actor, Action, Object, Outcome string
}

// trail reads the certificate's audit trail (GET
// /api/v1/certificates/{serial}/audit); nil when it cannot.
func (v *view) trail(who *auth.Principal, serial string) []trailEntry {
	ans, err := v.call(who, http.MethodGet, "/api/v1/certificates/"+url.PathEscape(serial)+"/audit", "", nil, nil, 4<<20)
	if err != nil || !ans.ok() {
		return nil
	}
	var out struct {
		Records []trailEntry `json:"records"`
	}
	if json.Unmarshal(ans.body, &out) != nil {
		return nil
	}
	return out.Records
}

// foundView is one certificate of a search on the console.
type foundView struct {
	Serial, CA, Profile, Subject, CommonName, Status, CredentialID string
	NotAfter                                                       time.Time
}

// raSearch finds certificates by civil number, organisation identifier or
// name (GET /api/v1/certificates?…), optionally of one status.
func (p *Portal) raSearch(w http.ResponseWriter, r *http.Request, v *view) {
	who := v.officer()
	if who == nil {
		return
	}
	in := r.URL.Query()
	q := url.Values{}
	for _, k := range []string{"civilNumber", "organizationIdentifier", "name", "status"} {
		if s := strings.TrimSpace(in.Get(k)); s != "" {
			q.Set(k, s)
		}
	}
	data := map[string]any{"Query": map[string]string{"civilNumber": q.Get("civilNumber"), "organizationIdentifier": q.Get("organizationIdentifier"),
		"name": q.Get("name"), "status": q.Get("status")}, "Searched": len(q) > 0}
	if len(q) == 0 || (len(q) == 1 && q.Has("status")) {
		data["Searched"] = false
		v.render(http.StatusOK, "officer_search", "search.title", data)
		return
	}
	ans, err := v.call(who, http.MethodGet, "/api/v1/certificates?"+q.Encode(), "", nil, nil, 8<<20)
	if err != nil {
		v.apiFail(err)
		return
	}
	// The search goes to the API whatever was typed, so that it is
	// audited with its query; what the officer can correct is then said in
	// the page's language: a civil number is digits (the API finds none
	// with letters), a name has two characters at least (the API's
	// refusal is English).
	badCivil := q.Get("civilNumber") != "" && strings.Trim(q.Get("civilNumber"), "0123456789") != ""
	shortName := q.Get("name") != "" && utf8.RuneCountInString(q.Get("name")) < 2
	if (ans.ok() || ans.status == http.StatusBadRequest) && (badCivil || shortName) {
		data["Error"] = v.t("search.bad_civil")
		if !badCivil {
			data["Error"] = v.t("search.short_name")
		}
		v.renderStatus(http.StatusBadRequest, "officer_search", "search.title", data)
		return
	}
	if !ans.ok() {
		data["Error"] = v.apiMessage(ans)
		v.renderStatus(ans.status, "officer_search", "search.title", data)
		return
	}
	var out struct {
		Certificates []foundView `json:"certificates"`
		Truncated    bool        `json:"truncated"`
	}
	if err := json.Unmarshal(ans.body, &out); err != nil {
		v.apiFail(err)
		return
	}
	data["Results"], data["Truncated"] = out.Certificates, out.Truncated
	v.render(http.StatusOK, "officer_search", "search.title", data)
}
