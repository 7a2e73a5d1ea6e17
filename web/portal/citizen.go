package portal

import (
	"bytes"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/thiqa/thiqa/internal/auth"
	"github.com/thiqa/thiqa/policies"
)

// signedDocument is a document of the sign flow: uploaded and waiting for
// the PIN, then signed and waiting for download. Once it is in a session
// it is never changed: the requests of one browser run at once and read
// it without the session lock, so the approval puts a new one in its
// place.
type signedDocument struct {
	Name       string
	credential string
	Level      string
	upload     []byte // the PDF to sign (until signed)
	UploadHash string // hex SHA-256 of upload
	signed     []byte // the signed PDF
	Digest     string // the ByteRange digest the service signed
	Report     *reportView
	at         time.Time
}

// size is what the document holds in memory.
func (d *signedDocument) size() int64 { return int64(len(d.upload) + len(d.signed)) }

// hold accounts for d's bytes in the shared budget; false when over it.
func (p *Portal) hold(n int64) bool {
	if p.held.Add(n) > p.o.MaxHeldBytes {
		p.held.Add(-n)
		return false
	}
	return true
}

// keepDocument makes doc the document se holds, in place of the one it
// held, whose bytes it gives back first; false (and nothing held) when doc
// does not fit the budget. The swap is one step under the store's lock:
// uploads of one browser that arrive at once (a double click) each give
// back exactly the document they replace, never the same one twice while
// another's bytes stay counted for ever. A session that ended meanwhile
// keeps nothing (its release has run: bytes held for it would never be
// given back).
func (p *Portal) keepDocument(se *session, doc *signedDocument) bool {
	kept := true
	p.ses.locked(func() {
		if se.signed != nil {
			p.held.Add(-se.signed.size())
			se.signed = nil
		}
		if !p.ses.liveLocked(se) {
			return
		}
		if kept = p.hold(doc.size()); kept {
			se.signed = doc
		}
	})
	return kept
}

// dropHeld releases the documents of se.
func (p *Portal) dropHeld(se *session) {
	p.ses.locked(func() {
		if se.signed != nil {
			p.held.Add(-se.signed.size())
			se.signed = nil
		}
	})
}

// citizen returns the signed-in citizen, or sends the browser to the
// sign-in page (an officer's session is refused and audited).
func (v *view) citizen() *auth.Principal {
	who, kind := v.who()
	if who == nil {
		v.render(http.StatusOK, "my_login", "my.title", nil)
		return nil
	}
	if kind != "citizen" && kind != "phone" || !who.Has(policies.RoleCitizen) || who.CivilNumber == "" {
		v.failRecorded(v.p.auditRefusal(v.r, v.se, "web.my", "the portal is for citizens"), http.StatusForbidden, "err.not_citizen")
		return nil
	}
	return who
}

// credentialView is one of the citizen's credentials on the page.
type credentialView struct {
	ID, Subject, Serial, CertStatus, KeyStatus string
	// Name is the holder's name (the certificate's common name).
	Name               string
	ValidFrom, ValidTo time.Time
	PINSet, PINLocked  bool
	// Kind is signing or mobile-id; PINState is the life-cycle state
	// (not-set, activation-pending, set, locked) when the service gives it.
	Kind, PINState string
	// ExpiresInDays is the whole days left, when the service gives it.
	ExpiresInDays int
	HasLifecycle  bool
}

// cscTime reads a CSC GeneralizedTime ("20261203120000Z").
func cscTime(s string) time.Time {
	t, err := time.Parse("20060102150405Z", s)
	if err != nil {
		return time.Time{}
	}
	return t
}

// myCredentials lists the citizen's signing credentials through the CSC
// API (credentials/list answers the caller's own only).
func (v *view) myCredentials(who *auth.Principal) ([]credentialView, error) {
	ans, err := v.call(who, http.MethodPost, "/csc/v2/credentials/list", "application/json",
		strings.NewReader(`{"credentialInfo":true,"certInfo":true,"certificates":"single","authInfo":true}`), nil, 4<<20)
	if err != nil {
		return nil, err
	}
	if !ans.ok() {
		return nil, &apiError{status: ans.status, detail: problemDetail(ans.body)}
	}
	var out struct {
		IDs   []string `json:"credentialIDs"`
		Infos []struct {
			CredentialID string `json:"credentialID"`
			Key          struct {
				Status string `json:"status"`
			} `json:"key"`
			Cert struct {
				Status       string   `json:"status"`
				SerialNumber string   `json:"serialNumber"`
				SubjectDN    string   `json:"subjectDN"`
				ValidFrom    string   `json:"validFrom"`
				ValidTo      string   `json:"validTo"`
				Certificates []string `json:"certificates"`
			} `json:"cert"`
			PIN *struct {
				Set    bool `json:"set"`
				Locked bool `json:"locked"`
			} `json:"PIN"`
		} `json:"credentialInfos"`
	}
	if err := json.Unmarshal(ans.body, &out); err != nil {
		return nil, err
	}
	var list []credentialView
	for _, in := range out.Infos {
		c := credentialView{ID: in.CredentialID, Subject: in.Cert.SubjectDN, Serial: strings.ToLower(in.Cert.SerialNumber), CertStatus: in.Cert.Status,
			KeyStatus: in.Key.Status, ValidFrom: cscTime(in.Cert.ValidFrom), ValidTo: cscTime(in.Cert.ValidTo)}
		c.Name = c.Subject
		if len(in.Cert.Certificates) > 0 {
			if der, err := base64.StdEncoding.DecodeString(in.Cert.Certificates[0]); err == nil {
				if cert, err := x509.ParseCertificate(der); err == nil && cert.Subject.CommonName != "" {
					c.Name = cert.Subject.CommonName
				}
			}
		}
		if in.PIN != nil {
			c.PINSet, c.PINLocked = in.PIN.Set, in.PIN.Locked
		}
		list = append(list, c)
	}
	return list, nil
}

// apiError is an API refusal shown on a page.
type apiError struct {
	status int
	detail string
}

func (e *apiError) Error() string { return e.detail }

// myHome lists the citizen's credentials with their actions.
func (p *Portal) myHome(w http.ResponseWriter, r *http.Request, v *view) {
	who := v.citizen()
	if who == nil {
		return
	}
	creds, err := v.myCredentials(who)
	if err != nil {
		v.apiFail(err)
		return
	}
	creds = v.withLifecycle(who, creds)
	v.render(http.StatusOK, "my_home", "my.title", map[string]any{"Credentials": creds})
}

// withLifecycle adds what GET /api/v1/credentials?owner=self says (the
// mobile ID too, the PIN's life-cycle state, the days left); the CSC list
// alone when the service does not offer it.
func (v *view) withLifecycle(who *auth.Principal, creds []credentialView) []credentialView {
	own, err := v.ownCredentials(who)
	if err != nil {
		return creds
	}
	var sessionName string
	v.p.ses.locked(func() { sessionName = v.se.name })
	out := make([]credentialView, 0, len(own))
	for _, o := range own {
		c := credentialView{ID: o.CredentialID, Serial: strings.ToLower(o.CertSerial), ValidTo: o.NotAfter, CertStatus: "valid", Name: sessionName}
		if i := slices.IndexFunc(creds, func(x credentialView) bool { return x.ID == o.CredentialID }); i >= 0 {
			c = creds[i]
		} else if o.CertStatus != "" {
			c.CertStatus = o.CertStatus // a mobile ID's revoked certificate is not shown as valid
		} else if o.ExpiresInDays < 0 {
			c.CertStatus = "expired"
		}
		c.Kind, c.PINState, c.ExpiresInDays, c.HasLifecycle = o.Kind, o.PIN, o.ExpiresInDays, true
		c.PINSet, c.PINLocked = o.PIN == "set" || o.PIN == "locked", o.PIN == "locked"
		out = append(out, c)
	}
	return out
}

// ownCredential finds id among the citizen's credentials (nil when it is
// not theirs: the page never acts on a credential it did not list).
func (v *view) ownCredential(who *auth.Principal, id string) (*credentialView, error) {
	creds, err := v.myCredentials(who)
	if err != nil {
		return nil, err
	}
	i := slices.IndexFunc(creds, func(c credentialView) bool { return c.ID == id })
	if i < 0 {
		return nil, nil
	}
	return &creds[i], nil
}

// myPIN sets the signing PIN of one of the citizen's credentials through
// POST /api/v1/credentials/{id}/pin.
func (p *Portal) myPIN(w http.ResponseWriter, r *http.Request, v *view) {
	who := v.citizen()
	if who == nil {
		return
	}
	id, pin, again := r.PostFormValue("credential"), r.PostFormValue("pin"), r.PostFormValue("pin2")
	if pin != again {
		v.flash("err.pin_mismatch", "error")
		v.redirect("/my/")
		return
	}
	path, req := "/api/v1/credentials/"+url.PathEscape(id)+"/pin", map[string]string{"pin": pin}
	if code := strings.TrimSpace(r.PostFormValue("code")); code != "" {
		// After an officer's reset: the activation code sets the PIN.
		path, req = path+"/activate", map[string]string{"activationCode": code, "pin": pin}
	}
	body, _ := json.Marshal(req)
	ans, err := v.call(who, http.MethodPost, path, "application/json", bytes.NewReader(body), nil, 1<<20)
	if err != nil {
		v.apiFail(err)
		return
	}
	if !ans.ok() {
		v.flashAPI(ans)
		v.redirect("/my/")
		return
	}
	v.flash("my.pin_set", "ok")
	v.redirect("/my/")
}

// mySignForm shows the upload form.
func (p *Portal) mySignForm(w http.ResponseWriter, r *http.Request, v *view) {
	who := v.citizen()
	if who == nil {
		return
	}
	creds, err := v.myCredentials(who)
	if err != nil {
		v.apiFail(err)
		return
	}
	var usable []credentialView
	for _, c := range creds {
		if c.CertStatus == "valid" && c.PINSet && !c.PINLocked {
			usable = append(usable, c)
		}
	}
	var doc *signedDocument
	p.ses.locked(func() { doc = v.se.signed })
	v.render(http.StatusOK, "my_sign", "sign.title", map[string]any{"Credentials": usable, "MaxMiB": p.o.MaxUploadBytes >> 20, "Doc": doc})
}

// Signing levels the portal offers, the default first.
var levels = []string{"B-LT", "B-T", "B-B", "B-LTA"}

// mySignUpload keeps the uploaded PDF in the session and shows its hash,
// the credential and the level for approval with the PIN.
func (p *Portal) mySignUpload(w http.ResponseWriter, r *http.Request, v *view) {
	who := v.citizen()
	if who == nil {
		return
	}
	cred, level := r.PostFormValue("credential"), r.PostFormValue("level")
	if !slices.Contains(levels, level) {
		v.fail(http.StatusBadRequest, "err.bad_form")
		return
	}
	own, err := v.ownCredential(who, cred)
	if err != nil {
		v.apiFail(err)
		return
	}
	if own == nil {
		v.failRecorded(v.p.auditRefusal(r, v.se, "web.sign", "credential "+cred+" is not the citizen's"), http.StatusForbidden, "err.not_yours")
		return
	}
	f, hdr, err := r.FormFile("document")
	if err != nil {
		v.fail(http.StatusBadRequest, "err.no_file")
		return
	}
	defer f.Close()
	if hdr.Size > p.o.MaxUploadBytes {
		v.fail(http.StatusRequestEntityTooLarge, "err.too_large")
		return
	}
	data, err := io.ReadAll(io.LimitReader(f, p.o.MaxUploadBytes+1))
	if err != nil || int64(len(data)) > p.o.MaxUploadBytes {
		v.fail(http.StatusRequestEntityTooLarge, "err.too_large")
		return
	}
	if !bytes.HasPrefix(bytes.TrimLeft(data, "\x00\t\r\n\f "), []byte("%PDF-")) {
		v.fail(http.StatusUnsupportedMediaType, "err.not_pdf")
		return
	}
	doc := &signedDocument{Name: cleanName(hdr.Filename), credential: cred, Level: level, upload: data, at: p.o.Now()}
	sum := sha256.Sum256(data)
	doc.UploadHash = hex.EncodeToString(sum[:])
	if !p.keepDocument(v.se, doc) {
		v.fail(http.StatusServiceUnavailable, "err.busy")
		return
	}
	v.render(http.StatusOK, "my_sign_approve", "sign.title", map[string]any{"Doc": doc, "Credential": own})
}

// cleanName keeps a file name for display and download: its base name,
// printable, bounded, ending in .pdf.
func cleanName(s string) string {
	if i := strings.LastIndexAny(s, `/\`); i >= 0 {
		s = s[i+1:]
	}
	s = strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f || strings.ContainsRune(`"<>:|?*;`, r) {
			return -1
		}
		return r
	}, s)
	if r := []rune(s); len(r) > 80 {
		s = string(r[:80])
	}
	s = strings.TrimSuffix(s, ".pdf")
	if s == "" {
		s = "document"
	}
	return s + ".pdf"
}

// mySignApprove signs the held PDF with the PIN through POST
// /api/v1/sign, then verifies the result through POST /api/v1/verify.
func (p *Portal) mySignApprove(w http.ResponseWriter, r *http.Request, v *view) {
	who := v.citizen()
	if who == nil {
		return
	}
	var doc *signedDocument
	busy := false
	p.ses.locked(func() {
		doc = v.se.signed
		if doc == nil || doc.upload == nil || r.PostFormValue("hash") != doc.UploadHash {
			return
		}
		// One approval at a time: a second click while the first signs
		// must not sign (and spend a PIN try) twice.
		if busy = v.se.approving == doc; !busy {
			v.se.approving = doc
		}
	})
	if doc == nil || doc.upload == nil || r.PostFormValue("hash") != doc.UploadHash {
		v.fail(http.StatusConflict, "err.no_pending_document")
		return
	}
	if busy {
		v.fail(http.StatusConflict, "err.signing_in_progress")
		return
	}
	defer p.ses.locked(func() {
		if v.se.approving == doc {
			v.se.approving = nil
		}
	})
	q := url.Values{"credential": {doc.credential}, "level": {doc.Level}}
	ans, err := v.call(who, http.MethodPost, "/api/v1/sign?"+q.Encode(), "application/pdf", bytes.NewReader(doc.upload),
		map[string]string{"X-Thiqa-PIN": r.PostFormValue("pin")}, 2*p.o.MaxUploadBytes+(4<<20))
	if err != nil {
		v.apiFail(err)
		return
	}
	if !ans.ok() {
		own, _ := v.ownCredential(who, doc.credential)
		v.renderStatus(ans.status, "my_sign_approve", "sign.title", map[string]any{"Doc": doc, "Credential": own, "Error": v.apiMessage(ans)})
		return
	}
	signed := ans.body
	rep := v.verifyReport(signed)
	done := *doc
	done.upload, done.signed, done.Digest, done.Report = nil, signed, ans.header.Get("X-Thiqa-Document-Digest"), rep
	p.ses.locked(func() {
		if v.se.signed == doc {
			p.held.Add(done.size() - doc.size())
			v.se.signed = &done
		}
	})
	v.render(http.StatusOK, "my_signed", "sign.title", map[string]any{"Doc": &done})
}

// mySignedDownload sends the last signed PDF of the session.
func (p *Portal) mySignedDownload(w http.ResponseWriter, r *http.Request, v *view) {
	who := v.citizen()
	if who == nil {
		return
	}
	var doc *signedDocument
	p.ses.locked(func() { doc = v.se.signed })
	if doc == nil || doc.signed == nil {
		v.fail(http.StatusNotFound, "err.no_signed_document")
		return
	}
	w.Header().Set("Content-Type", "application/pdf")
	name := strings.TrimSuffix(doc.Name, ".pdf") + "-signed.pdf"
	ascii := strings.Map(func(r rune) rune {
		if r < 0x20 || r > 0x7e || r == '"' || r == '\\' || r == '%' {
			return '_'
		}
		return r
	}, name)
	w.Header().Set("Content-Disposition", `attachment; filename="`+ascii+`"; filename*=UTF-8''`+url.PathEscape(name))
	_, _ = w.Write(doc.signed)
}

// reportView is the verifier's verdict on what was signed.
type reportView struct {
	Indication string
	Signatures []reportSignature
}

type reportSignature struct {
	Indication, SubIndication, Signer, Level string
	SigningTime                              time.Time
}

// verifyReport runs the public verifier on pdf in process; nil when it
// cannot (the download still works).
func (v *view) verifyReport(pdf []byte) *reportView {
	ans, err := v.call(nil, http.MethodPost, "/api/v1/verify", "application/pdf", bytes.NewReader(pdf), nil, 8<<20)
	if err != nil || !ans.ok() {
		return nil
	}
	var rep struct {
		Indication string `json:"indication"`
		Signatures []struct {
			Indication    string     `json:"indication"`
			SubIndication string     `json:"subIndication"`
			Level         string     `json:"level"`
			Proven        *time.Time `json:"provenSigningTime"`
			Claimed       *time.Time `json:"claimedSigningTime"`
			Signer        struct {
				Name       string `json:"name"`
				CommonName string `json:"commonName"`
			} `json:"signer"`
		} `json:"signatures"`
	}
	if json.Unmarshal(ans.body, &rep) != nil {
		return nil
	}
	out := &reportView{Indication: rep.Indication}
	for _, s := range rep.Signatures {
		name := s.Signer.CommonName
		if name == "" {
			name = s.Signer.Name
		}
		rs := reportSignature{Indication: s.Indication, SubIndication: s.SubIndication, Signer: name, Level: s.Level}
		if s.Proven != nil {
			rs.SigningTime = *s.Proven
		} else if s.Claimed != nil {
			rs.SigningTime = *s.Claimed
		}
		out.Signatures = append(out.Signatures, rs)
	}
	return out
}

// Reasons a citizen may give for revoking their own certificate.
var citizenReasons = []string{"keyCompromise", "cessationOfOperation", "superseded"}

// myRevoke revokes one of the citizen's certificates: the first POST shows
// what will happen and asks to confirm, the second (confirm=yes) calls
// POST /api/v1/certificates/{serial}/revoke.
func (p *Portal) myRevoke(w http.ResponseWriter, r *http.Request, v *view) {
	who := v.citizen()
	if who == nil {
		return
	}
	id, reason := r.PostFormValue("credential"), r.PostFormValue("reason")
	own, err := v.ownCredential(who, id)
	if err != nil {
		v.apiFail(err)
		return
	}
	if own == nil { // a mobile ID: only the owner=self list has it
		if o, err := v.ownedBy(who, id); err == nil && o != nil {
			own = &credentialView{ID: o.CredentialID, Serial: strings.ToLower(o.CertSerial), Kind: o.Kind, Name: o.Kind}
			v.p.ses.locked(func() {
				if v.se.name != "" {
					own.Name = v.se.name
				}
			})
		}
	}
	if own == nil {
		v.failRecorded(v.p.auditRefusal(r, v.se, "web.revoke", "credential "+id+" is not the citizen's"), http.StatusForbidden, "err.not_yours")
		return
	}
	if !slices.Contains(citizenReasons, reason) {
		reason = citizenReasons[0]
	}
	if r.PostFormValue("confirm") != "yes" {
		v.render(http.StatusOK, "my_revoke", "revoke.title", map[string]any{"Credential": own, "Reason": reason, "Reasons": citizenReasons})
		return
	}
	body, _ := json.Marshal(map[string]string{"reason": reason})
	ans, err := v.call(who, http.MethodPost, "/api/v1/certificates/"+url.PathEscape(own.Serial)+"/revoke", "application/json", bytes.NewReader(body), nil, 1<<20)
	if err != nil {
		v.apiFail(err)
		return
	}
	if !ans.ok() {
		v.flashAPI(ans)
		v.redirect("/my/")
		return
	}
	v.flash("revoke.done", "ok")
	v.redirect("/my/")
}

// apiMessage turns an API refusal into a message in the page's language:
// the known refusals, told by their problem type (never by the English
// detail's words), have their own words; any other shows its status and
// the API's detail.
func (v *view) apiMessage(ans *apiAnswer) string {
	detail := problemDetail(ans.body)
	switch {
	case problemType(ans.body) == problemIssuerExpiring:
		// What is wrong and who must act, in the page's language; the
		// detail (English) names the CA, its end and the command.
		return v.t("err.issuer_expiring") + " (" + detail + ")"
	case problemType(ans.body) == problemIssuerRevoked:
		// As above: the root revoked the CA; the detail names it, the
		// revocation and the command.
		return v.t("err.issuer_revoked") + " (" + detail + ")"
	case problemType(ans.body) == problemNotRenewable:
		// Revoked, expired (for its holder) or of a profile renewed
		// elsewhere (409): the detail (English) says which and what to do.
		return v.t("err.not_renewable") + " (" + detail + ")"
	case problemType(ans.body) == problemFirstPIN:
		// The service sets first PINs with an activation code only: the
		// citizen is told, in the page's language, where to get one.
		return v.t("err.first_pin_code")
	case problemType(ans.body) == problemWrongActivation:
		// Not a permission: the code was mistyped, or is an old one.
		return v.t("err.activation_wrong")
	case problemType(ans.body) == problemActivationVoid:
		// Trying again is useless: the code is void.
		return v.t("err.activation_void")
	case problemType(ans.body) == problemActivationExpired:
		return v.t("err.activation_expired")
	case problemType(ans.body) == problemPINLocked:
		return v.t("err.pin_locked")
	case problemType(ans.body) == problemWrongPIN:
		return v.t("err.pin_wrong")
	case problemType(ans.body) == problemPINPolicy:
		return v.t("err.pin_policy") + " (" + detail + ")"
	case ans.status == http.StatusForbidden:
		return v.t("err.forbidden")
	}
	return v.t("err.api") + " " + formatNumber(v.lang, int64(ans.status)) + ": " + detail
}

// flashAPI leaves apiMessage for the next page.
func (v *view) flashAPI(ans *apiAnswer) {
	msg := v.apiMessage(ans)
	se := v.ensure()
	v.p.ses.locked(func() { se.flash, se.flashKind = "raw:"+msg, "error" })
}

// apiFail answers an error of an in-process call.
func (v *view) apiFail(err error) {
	var ae *apiError
	if errors.As(err, &ae) {
		v.failText(ae.status, v.apiMessage(&apiAnswer{status: ae.status, body: mustJSON(map[string]string{"detail": ae.detail})}))
		return
	}
	v.p.log.ErrorContext(v.r.Context(), "portal call failed", "err", err)
	v.fail(http.StatusServiceUnavailable, "err.unavailable")
}

func mustJSON(v any) []byte {
	b, _ := json.Marshal(v)
	return b
}
