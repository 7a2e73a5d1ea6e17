package keyring

import "testing"

func TestRoles(t *testing.T) {
	r := Roles{
		Keys:       map[string]string{"citizen-ca": "ca-citizen", "root-ca": "ca-root", "audit-checkpoint": "audit-checkpoint"},
		CAKeys:     map[string]string{"citizen-ca": "ca-citizen"},
		TSAUnit:    "tsa-unit",
		Responders: []string{"citizen", "root"},
	}
	for in, want := range map[string]string{
		"citizen-ca":           "ca-citizen",
		"citizen-ca-2":         "ca-citizen",
		"citizen-ca-x":         RoleOther,
		"root-ca-2":            RoleOther, // the root is no issuing CA
		"audit-checkpoint":     "audit-checkpoint",
		"tsa-unit":             "tsa-unit",
		"tsa-unit-20260101":    "tsa-unit",
		"ocsp-citizen-a1b2":    "ocsp-citizen",
		"ocsp-citizen_2-a1b2":  "ocsp-citizen",
		"ocsp-organisation-a1": RoleOther,
		"cred-0123":            RoleCredential,
		"something-else":       RoleOther,
	} {
		if got := r.Role(in); got != want {
			t.Errorf("%s: %s, want %s", in, got, want)
		}
	}
	if got := (Roles{}).Role("tsa-unit"); got != RoleOther {
		t.Errorf("no TSA: %s", got)
	}
}
