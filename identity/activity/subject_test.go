package activity

import "testing"

// Describe shows one record to one citizen by the page's rules: theirs by
// object or by their own doing; not a staff member's success on another's
// certificate under an actor equal to their civil number; nothing of
// someone else's.
func TestDescribe(t *testing.T) {
	a := Subject{CivilNumber: "11111111", Serials: []string{"0aaa"}, Credentials: []string{"cred-a"}}
	cases := []struct {
		name  string
		rec   Record
		shown bool
		by    string
	}{
		{"issued to A", Record{Actor: "officer-1", Action: "certificate.issue", Object: "0aaa", Outcome: "success",
			Details: []byte(`{"profile":"citizen-auth","subject":"CN=Aisha"}`)}, true, BySomeoneElse},
		{"A's PIN reset", Record{Actor: "officer-1", Action: "credential.pin.reset", Object: "cred-a", Outcome: "success"}, true, ByRegistrationOfficer},
		{"A's login", Record{Actor: "citizen:11111111", Action: "oidc.login", Object: "tax", Outcome: "success"}, true, ByYou},
		{"staff 11111111 revoking B's", Record{Actor: "11111111", Action: "certificate.revoke", Object: "0bbb", Outcome: "success"}, false, ""},
		{"B's own", Record{Actor: "22222222", Action: "document.sign", Object: "cred-b", Outcome: "success"}, false, ""},
		{"A's key renewing", Record{Actor: "cert:0aaa", Action: "certificate.renew", Object: "0aaa", Outcome: "success"}, true, ByYou},
	}
	for _, c := range cases {
		e, ok := Describe(a, c.rec, nil)
		if ok != c.shown || e.By != c.by {
			t.Errorf("%s: shown %v by %q, want %v by %q", c.name, ok, e.By, c.shown, c.by)
		}
		if ok && e.Description == otherActivity {
			t.Errorf("%s: not described", c.name)
		}
	}
	if _, ok := Describe(Subject{}, cases[0].rec, nil); ok {
		t.Error("no citizen")
	}
}
