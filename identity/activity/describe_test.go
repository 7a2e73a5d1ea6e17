package activity

import (
	"encoding/json"
	"maps"
	"slices"
	"strings"
	"testing"
	"time"
)

// fieldNames names the fields of the allowlist, for the test below.
var fieldNames = []struct {
	f    field
	name string
}{{fCredential, "credential"}, {fSerial, "serial"}, {fClient, "client"}, {fMethod, "method"}, {fNewSerial, "newSerial"},
	{fProfile, "profile"}, {fReason, "reason"}, {fDigest, "digest"}, {fDenied, "denied"}, {fBy, "by"}}

// TestAllowlist pins what each action shows: adding an action, or a field
// to one, is a decision about a citizen's privacy, made here in review.
func TestAllowlist(t *testing.T) {
	want := map[string]string{
		"oidc.login":              "client method by",
		"oidc.login.approve":      "by",
		"oidc.login.deny-all":     "denied by",
		"oidc.mobile.enrol":       "credential by",
		"web.login":               "by",
		"document.sign":           "credential digest by",
		"document.sign.prepare":   "credential digest by",
		"hash.sign":               "credential by",
		"credential.authorize":    "credential by",
		"credential.pin.set":      "credential by",
		"credential.pin.change":   "credential by",
		"credential.pin.activate": "credential by",
		"credential.pin.locked":   "credential by",
		"credential.pin.reset":    "credential by staff=registration-officer",
		"credential.info":         "credential by",
		"credential.list":         "by",
		"credential.list.own":     "by",
		"certificate.issue":       "serial profile by",
		"certificate.renew":       "serial newSerial by",
		"certificate.revoke":      "serial reason by",
		"certificate.read":        "serial by staff=staff",
		"audit.read":              "by staff=operator",
		"activity.read.own":       "by",
	}
	for _, action := range slices.Sorted(maps.Keys(allowlist)) {
		s := allowlist[action]
		var got []string
		for _, fn := range fieldNames {
			if s.fields&fn.f != 0 {
				got = append(got, fn.name)
			}
		}
		if s.staff != "" {
			got = append(got, "staff="+s.staff)
		}
		if w, ok := want[action]; !ok || strings.Join(got, " ") != w {
			t.Errorf("%s shows %q, want %q", action, strings.Join(got, " "), w)
		}
		if s.what == "" {
			t.Errorf("%s has no description", action)
		}
	}
	if len(allowlist) != len(want) {
		t.Errorf("%d actions allowed, want %d", len(allowlist), len(want))
	}
}

// Every field of the allowlist is filled when allowed and present, and
// only then: a record about another's object or with a value of the wrong
// form shows none of its details.
func TestDescribeFields(t *testing.T) {
	h := &holder{actors: CitizenActors("11111111"), serials: map[string]bool{"0aaa": true}, credentials: map[string]bool{"cred-a": true},
		person: "citizen:11111111", clients: map[string]string{"oidc-tax": "Tax portal"}}
	all := json.RawMessage(`{"method":"mobile","serial":"0ccc","profile":"citizen-signing","reason":"keyCompromise",
		"documentDigest":"` + strings.Repeat("ab", 32) + `","level":"B-LTA","denied":3,"remote":"203.0.113.9","subject":"CN=X"}`)
	rec := func(actor, action, object string, details json.RawMessage) Record {
		return Record{Seq: 7, Time: time.Unix(1, 0), Actor: actor, Action: action, Object: object, Outcome: "success", Details: details}
	}
	for _, tc := range []struct {
		name string
		rec  Record
		want Entry
	}{
		{"a login", rec("citizen:11111111", "oidc.login", "oidc-tax", all), Entry{By: ByYou, Client: "Tax portal", Method: "mobile"}},
		{"a refused login for the holder (a civil number typed)", Record{Seq: 7, Actor: "citizen:11111111", Action: "oidc.login", Object: "oidc-tax",
			Outcome: "refused", Details: all}, Entry{Client: "Tax portal", Method: "mobile"}},
		{"a login of another", rec("citizen:2", "oidc.login", "oidc-tax", all), Entry{By: BySomeoneElse}},
		{"a renewal", rec("11111111", "certificate.renew", "0aaa", all), Entry{By: ByYou, Serial: "0aaa", NewSerial: "0ccc"}},
		{"a revocation", rec("officer-1", "certificate.revoke", "0aaa", all), Entry{By: BySomeoneElse, Serial: "0aaa", Reason: "keyCompromise"}},
		{"a revocation of another's", rec("11111111", "certificate.revoke", "0bbb", all), Entry{By: ByYou}},
		{"a renewal with the holder's certificate (CMP, EST)", rec("cert:0aaa", "certificate.issue", "0aaa", all), Entry{By: ByYou, Serial: "0aaa", Profile: "citizen-signing"}},
		{"a request with another's certificate", rec("cert:0bbb", "certificate.issue", "0aaa", all), Entry{By: BySomeoneElse, Serial: "0aaa", Profile: "citizen-signing"}},
		{"an issuance by enrolment", rec("enrolment:ref-1", "certificate.issue", "0aaa", all), Entry{By: ByEnrolment, Serial: "0aaa", Profile: "citizen-signing"}},
		{"a signature", rec("11111111", "document.sign", "cred-a", all), Entry{By: ByYou, Credential: "cred-a", DocumentDigest: strings.Repeat("ab", 32), Level: "B-LTA"}},
		{"a lookup", rec("officer-1", "certificate.read", "0aaa", nil), Entry{By: ByStaff, Serial: "0aaa"}},
		{"a refusal naming an operator", rec("op-1", "certificate.read", "0aaa", json.RawMessage(`{"caller":{"roles":["operator"]}}`)), Entry{By: ByOperator, Serial: "0aaa"}},
		{"an operator's audit search for the holder's certificate", rec("root", "audit.read", "0aaa", nil), Entry{By: ByOperator}},
		{"a service's", rec("thiqa-serve", "certificate.revoke", "0aaa", nil), Entry{By: ByService, Serial: "0aaa"}},
		{"odd values", rec("11111111", "document.sign", "cred-a", json.RawMessage(`{"documentDigest":"<script>","level":"B B","reason":"x"}`)), Entry{By: ByYou, Credential: "cred-a"}},
		{"unreadable details", rec("11111111", "document.sign", "cred-a", json.RawMessage(`[1,2`)), Entry{By: ByYou, Credential: "cred-a"}},
		{"an unknown action", rec("11111111", "new.thing", "cred-a", all), Entry{}},
	} {
		got := h.describe(tc.rec)
		if got.Seq != 7 || got.Action != tc.rec.Action || got.Outcome != tc.rec.Outcome || got.Description == "" {
			t.Errorf("%s: %+v", tc.name, got)
		}
		got.Seq, got.Time, got.Action, got.Outcome, got.Description = 0, time.Time{}, "", "", ""
		if got.Denied != nil {
			t.Errorf("%s: denied %d", tc.name, *got.Denied)
			got.Denied = nil
		}
		if got != tc.want {
			t.Errorf("%s: %+v, want %+v", tc.name, got, tc.want)
		}
	}
	if e := h.describe(rec("citizen:11111111", "oidc.login.deny-all", "citizen:11111111", all)); e.Denied == nil || *e.Denied != 3 {
		t.Errorf("deny-all: %+v", e)
	}
}

// TestDescribeFirstPIN: the activation code of a new credential's first
// PIN (signing.pinPolicy.firstPINActivation) is recorded as
// credential.pin.reset with "firstPIN": true; its holder is told that a
// code was issued for their first PIN, not that a PIN was reset. An
// officer's reset says "PIN reset" as before, and a firstPIN of another
// kind (the CA's issuance record has the string "activationCode") neither
// changes a description nor hides the record's other fields.
func TestDescribeFirstPIN(t *testing.T) {
	h := &holder{actors: CitizenActors("11111111"), serials: map[string]bool{"0aaa": true}, credentials: map[string]bool{"cred-a": true},
		person: "citizen:11111111"}
	for _, c := range []struct {
		action, object, details, want string
		first                         bool
	}{
		{"credential.pin.reset", "cred-a", `{"firstPIN":true,"certificate":"0aaa","expiresAt":"2030-01-02T03:04:05Z"}`, firstPINCode, true},
		{"credential.pin.reset", "cred-a", `{"kind":"signing"}`, "PIN reset (an activation code issued)", false},
		{"credential.pin.reset", "cred-a", `{"firstPIN":"activationCode"}`, "PIN reset (an activation code issued)", false},
		{"credential.pin.reset", "cred-a", `{"firstPIN":false}`, "PIN reset (an activation code issued)", false},
		{"credential.pin.set", "cred-a", `{"firstPIN":true}`, "PIN set", false},
		{"certificate.issue", "0aaa", `{"firstPIN":"activationCode","profile":"citizen-signing"}`, "Certificate issued", false},
	} {
		e := h.describe(Record{Seq: 1, Time: time.Unix(1, 0), Actor: "officer-1", Action: c.action, Object: c.object, Outcome: "success",
			Details: json.RawMessage(c.details)})
		if e.Description != c.want || e.FirstPIN != c.first || e.By != ByRegistrationOfficer && c.action == "credential.pin.reset" {
			t.Errorf("%s %s: %+v, want %q (firstPIN %v)", c.action, c.details, e, c.want, c.first)
		}
		if c.action == "certificate.issue" && e.Profile != "citizen-signing" {
			t.Errorf("%s %s: the profile is lost: %+v", c.action, c.details, e)
		}
		b, _ := json.Marshal(e)
		if strings.Contains(string(b), `"firstPIN"`) != c.first {
			t.Errorf("%s %s: the entry's JSON %s", c.action, c.details, b)
		}
	}
}
