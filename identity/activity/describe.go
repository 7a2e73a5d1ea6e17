package activity

import (
	"encoding/json"
	"regexp"
	"slices"
	"strings"

	"github.com/thiqa/thiqa/policies"
)

// What a record may show its holder. An action absent from allowlist shows
// its action, time and outcome only. A field is filled only from the
// record (claiming nothing it does not say), only when the record is about
// the holder's own certificate, credential or person (the object) or, for
// a login, made by the holder (the actor), and only when its value has
// the expected form: no name, address, subject or raw details ever leaves.

// field is one shown field of an Entry.
type field uint16

// The fields an action may show.
const (
	// fCredential: the object, when it is one of the holder's credentials.
	fCredential field = 1 << iota
	// fSerial: the object, when it is one of the holder's certificates.
	fSerial
	// fClient: the object's registered client name (a login by the holder).
	fClient
	// fMethod: details.method, when a known login method.
	fMethod
	// fNewSerial: details.serial (a renewal's new certificate).
	fNewSerial
	// fProfile: details.profile.
	fProfile
	// fReason: details.reason, when an RFC 5280 reason name.
	fReason
	// fDigest: details.documentDigest and details.level.
	fDigest
	// fDenied: details.denied (a deny-all's count).
	fDenied
	// fBy: who, as a role (see by).
	fBy
)

// Values of Entry.By.
const (
	ByYou                 = "you"
	ByRegistrationOfficer = string(policies.RoleRegistrationOfficer)
	ByOperator            = string(policies.RoleOperator)
	// ByStaff is a registration officer or an operator: the action is
	// allowed to those roles alone.
	ByStaff = "staff"
	// ByEnrolment is a one-time enrolment reference (CMP, EST).
	ByEnrolment   = "enrolment"
	ByService     = "service"
	BySomeoneElse = "someone-else"
)

// shown is what one action shows: its description and fields; staff is
// the By of an actor other than the holder whom the record does not name
// by role, when the action is allowed to one kind of staff alone.
type shown struct {
	what   string
	fields field
	staff  string
}

// allowlist maps each known action to what its records show.
var allowlist = map[string]shown{
	"oidc.login":              {what: "Login to a portal with your digital ID", fields: fClient | fMethod | fBy},
	"oidc.login.approve":      {what: "Login approval on your phone", fields: fBy},
	"oidc.login.deny-all":     {what: "All pending logins denied", fields: fDenied | fBy},
	"oidc.mobile.enrol":       {what: "Mobile ID enrolled", fields: fCredential | fBy},
	"web.login":               {what: "Sign-in to the citizen portal", fields: fBy},
	"document.sign":           {what: "Document signed", fields: fCredential | fDigest | fBy},
	"document.sign.prepare":   {what: "Document prepared for signing", fields: fCredential | fDigest | fBy},
	"hash.sign":               {what: "Signature made with your credential", fields: fCredential | fBy},
	"credential.authorize":    {what: "Signing authorised with your PIN", fields: fCredential | fBy},
	"credential.pin.set":      {what: "PIN set", fields: fCredential | fBy},
	"credential.pin.change":   {what: "PIN changed", fields: fCredential | fBy},
	"credential.pin.activate": {what: "PIN set with an activation code", fields: fCredential | fBy},
	"credential.pin.locked":   {what: "PIN locked after too many wrong tries", fields: fCredential | fBy},
	"credential.pin.reset":    {what: "PIN reset (an activation code issued)", fields: fCredential | fBy, staff: ByRegistrationOfficer},
	"credential.info":         {what: "Credential details read", fields: fCredential | fBy},
	"credential.list":         {what: "Your credentials listed", fields: fBy},
	"credential.list.own":     {what: "Your credentials listed", fields: fBy},
	"certificate.issue":       {what: "Certificate issued", fields: fSerial | fProfile | fBy},
	"certificate.renew":       {what: "Certificate renewed", fields: fSerial | fNewSerial | fBy},
	"certificate.revoke":      {what: "Certificate revoked", fields: fSerial | fReason | fBy},
	"certificate.read":        {what: "Certificate looked up", fields: fSerial | fBy, staff: ByStaff},
	// An operator's `thiqa audit find` for the holder's certificate,
	// credential or person.
	"audit.read": {what: "Audit records about you looked up", fields: fBy, staff: ByOperator},
	ActionRead:   {what: "Your activity read", fields: fBy},
}

// otherActivity describes an action not in allowlist.
const otherActivity = "Other recorded activity"

// firstPINCode describes the record of the activation code a new
// credential's first PIN is set with (signing.pinPolicy.firstPINActivation):
// the signing service records it as credential.pin.reset with
// "firstPIN": true, though no PIN was there to reset.
const firstPINCode = "Activation code issued for your first signing PIN"

// Forms a shown value must have.
var (
	reSerial  = regexp.MustCompile(`^[0-9a-f]{2,40}$`)
	reProfile = regexp.MustCompile(`^[a-z][a-z0-9-]{0,63}$`)
	reDigest  = regexp.MustCompile(`^[0-9a-f]{32,128}$`)
	reLevel   = regexp.MustCompile(`^[A-Za-z][A-Za-z-]{0,15}$`)
	methods   = []string{"mobile", "mtls"}
	reasons   = []string{"unspecified", "keyCompromise", "caCompromise", "affiliationChanged", "superseded", "cessationOfOperation",
		"certificateHold", "removeFromCRL", "privilegeWithdrawn", "aACompromise"}
)

// holder is whom the entries are described for.
type holder struct {
	actors      []string        // the actors the holder's own records carry
	serials     map[string]bool // the holder's certificates
	credentials map[string]bool // the holder's credentials
	person      string          // "citizen:<civil number>"
	truncated   bool            // the holder has more certificates than serials holds
	clients     map[string]string
}

// owns reports whether object is the holder's certificate, credential or
// person.
func (h *holder) owns(object string) bool {
	return h.serials[object] || h.credentials[object] || object == h.person
}

// ownKey reports whether actor is one of the holder's certificates,
// "cert:" followed by its serial: CMP and EST name so a request signed
// with that certificate's key (a card or device renewing itself), which
// is the holder's doing as much as a login with the same card is.
func (h *holder) ownKey(actor string) bool {
	serial, ok := strings.CutPrefix(actor, "cert:")
	return ok && h.serials[serial]
}

// recordDetails are the details keys describe may read.
type recordDetails struct {
	Method         string   `json:"method"`
	Serial         string   `json:"serial"`
	Profile        string   `json:"profile"`
	Reason         string   `json:"reason"`
	DocumentDigest string   `json:"documentDigest"`
	Level          string   `json:"level"`
	Denied         *float64 `json:"denied"`
	// FirstPIN is read as any value: only a JSON true counts (the CA's
	// issuance record has the string "activationCode" there), and a value
	// of another type must not fail the decoding of the others.
	FirstPIN any `json:"firstPIN"`
	Caller   *struct {
		Roles []string `json:"roles"`
	} `json:"caller"`
}

// personal are the actions a citizen makes about no certificate or
// credential of theirs: logins, sign-ins, listings, reading this log.
var personal = map[string]bool{"oidc.login": true, "oidc.login.approve": true, "web.login": true,
	"credential.list": true, "credential.list.own": true, ActionRead: true}

// shows reports whether rec, read by its actor or object, is the holder's
// to see. A record found by its actor alone (its object is none of the
// holder's) is the holder's doing only when a citizen could have done it:
// a personal action, but not a sign-in to the officers' console; or a
// refused attempt on what is not theirs, whose caller, when the record
// names one, was a citizen. Staff whose subject happens to equal a civil
// number (policies.CheckCallerSubject allows digits) act on others'
// certificates under that same actor; what they did is not the holder's
// and is not shown (but for their successes while the holder's
// certificates are truncated).
func (h *holder) shows(rec Record) bool {
	if h.owns(rec.Object) || !slices.Contains(h.actors, rec.Actor) {
		return true // found by its object (or by an own key)
	}
	if personal[rec.Action] {
		return !(rec.Action == "web.login" && strings.HasPrefix(rec.Object, "/ra/"))
	}
	if rec.Outcome == "success" {
		// A citizen succeeds only on what is theirs; past MaxHoldings
		// the holder's older certificates are unknown here, so their own
		// records on those stay shown.
		return h.truncated
	}
	var d recordDetails
	if len(rec.Details) > 0 && json.Unmarshal(rec.Details, &d) == nil && d.Caller != nil {
		return slices.Contains(d.Caller.Roles, string(policies.RoleCitizen))
	}
	return true
}

// describe is rec as its holder sees it.
func (h *holder) describe(rec Record) Entry {
	e := Entry{Seq: rec.Seq, Time: rec.Time, Action: rec.Action, Outcome: rec.Outcome, Description: otherActivity}
	s, known := allowlist[rec.Action]
	if !known {
		return e
	}
	e.Description = s.what
	var d recordDetails
	if len(rec.Details) > 0 {
		_ = json.Unmarshal(rec.Details, &d) // unreadable details show nothing of theirs
	}
	mine, own := slices.Contains(h.actors, rec.Actor), h.owns(rec.Object)
	// The identity provider names a refused or failed login by the civil
	// number typed into its form, before anyone is authenticated: such a
	// record says that a login was tried for the holder, not by whom.
	claimed := mine && rec.Actor == h.person && rec.Outcome != "success"
	if rec.Action == "credential.pin.reset" && d.FirstPIN == true {
		e.Description, e.FirstPIN = firstPINCode, true
	}
	if s.fields&fBy != 0 && !claimed {
		e.By = by(rec.Actor, mine || h.ownKey(rec.Actor), d, s.staff)
	}
	if own {
		if s.fields&fCredential != 0 && h.credentials[rec.Object] {
			e.Credential = rec.Object
		}
		if s.fields&fSerial != 0 && h.serials[rec.Object] {
			e.Serial = rec.Object
		}
		if s.fields&fNewSerial != 0 && reSerial.MatchString(d.Serial) {
			e.NewSerial = d.Serial
		}
		if s.fields&fProfile != 0 && reProfile.MatchString(d.Profile) {
			e.Profile = d.Profile
		}
		if s.fields&fReason != 0 && slices.Contains(reasons, d.Reason) {
			e.Reason = d.Reason
		}
		if s.fields&fDigest != 0 && reDigest.MatchString(d.DocumentDigest) {
			e.DocumentDigest = d.DocumentDigest
		}
		if s.fields&fDigest != 0 && reLevel.MatchString(d.Level) {
			e.Level = d.Level
		}
		if s.fields&fDenied != 0 && d.Denied != nil && *d.Denied >= 0 && *d.Denied < 1e6 {
			n := int(*d.Denied)
			e.Denied = &n
		}
	}
	if mine {
		if s.fields&fClient != 0 {
			e.Client = h.clients[rec.Object]
		}
		if s.fields&fMethod != 0 && slices.Contains(methods, d.Method) {
			e.Method = d.Method
		}
	}
	return e
}

// serviceActors are the service's own actors.
var serviceActors = []string{"thiqa-serve", "thiqa-init", "ca"}

// by names who made a record as a role, never by name: the holder (mine:
// under their civil number or with their certificate's key); the
// role the record names (a refusal carries its caller's roles); the staff
// the action is allowed to alone; a one-time enrolment; the service;
// the thiqa commands on the host (actor cli:USER), which only an operator
// runs; otherwise someone else.
func by(actor string, mine bool, d recordDetails, staff string) string {
	switch {
	case mine:
		return ByYou
	case d.Caller != nil && slices.Contains(d.Caller.Roles, string(policies.RoleRegistrationOfficer)):
		return ByRegistrationOfficer
	case d.Caller != nil && slices.Contains(d.Caller.Roles, string(policies.RoleOperator)):
		return ByOperator
	case d.Caller != nil:
		return BySomeoneElse
	case staff != "":
		return staff
	case strings.HasPrefix(actor, "enrolment:"):
		return ByEnrolment
	case slices.Contains(serviceActors, actor):
		return ByService
	case strings.HasPrefix(actor, "cli:"):
		return ByOperator
	}
	return BySomeoneElse
}
