package signing_test

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"testing"

	"github.com/thiqa/thiqa/policies"
	"github.com/thiqa/thiqa/signing"
	"github.com/thiqa/thiqa/store/storetest"
)

// TestPINChangesNeverLackTheirRecord on SQLite and PostgreSQL: while the
// audit log cannot be written, setting, changing, resetting and
// activating a PIN fail (500) and change nothing; the same request sent
// again once the log is back succeeds, with exactly one success record.
func TestPINChangesNeverLackTheirRecord(t *testing.T) {
	for _, d := range storetest.Dialects() {
		t.Run(d.Name, func(t *testing.T) {
			w := newWorld(t, d, worldOptions{})
			citizen := w.token(t, "12345678", policies.RoleCitizen)
			officer := w.token(t, "officer-1", policies.RoleRegistrationOfficer)
			cred, _ := w.credential(t, policies.ProfileCitizenSigning, citizenSubject())
			path := "/api/v1/credentials/" + cred + "/pin"
			// try sends the request with the log down (a failure), then
			// again with it up (ok), and checks one success record.
			try := func(what, action, token, p string, body any, ok int, unchanged func()) map[string]any {
				t.Helper()
				w.auditGate.Down.Store(true)
				if code, m := w.csc(t, p, token, body); code != 500 {
					t.Fatalf("%s with the audit log down: %d %v", what, code, m)
				}
				w.auditGate.Down.Store(false)
				if unchanged != nil {
					unchanged()
				}
				code, m := w.csc(t, p, token, body)
				if code != ok {
					t.Fatalf("%s again (the first changed something?): %d %v", what, code, m)
				}
				if n := len(w.records(t, action, "success", "")); n != 1 {
					t.Fatalf("%s: %d success records", what, n)
				}
				return m
			}
			sum := sha256.Sum256([]byte("a contract"))
			// pinIs checks that p is the PIN (a reset would have cleared it).
			pinIs := func(p string) func() {
				return func() {
					t.Helper()
					code, m := w.csc(t, "/csc/v2/credentials/authorize", citizen, map[string]any{"credentialID": cred, "numSignatures": 1,
						"hashes": []string{base64.StdEncoding.EncodeToString(sum[:])}, "hashAlgorithmOID": "2.16.840.1.101.3.4.2.1", "PIN": p})
					if code != 200 {
						t.Fatalf("the PIN is no longer %s: %d %v", p, code, m)
					}
				}
			}
			try("set", signing.ActionPINSet, citizen, path, signing.PINRequest{PIN: testPIN}, 201, nil)
			try("change", signing.ActionPINChange, citizen, path+"/change", signing.PINChangeRequest{Old: testPIN, New: "583920"}, 200, pinIs(testPIN))
			m := try("reset", signing.ActionPINReset, officer, path+"/reset", map[string]any{}, 200, pinIs("583920"))
			var reset signing.PINResetResponse
			b, _ := json.Marshal(m)
			if err := json.Unmarshal(b, &reset); err != nil || reset.ActivationCode == "" {
				t.Fatalf("reset: %v %v", m, err)
			}
			try("activate", signing.ActionPINActivate, citizen, path+"/activate", signing.PINActivateRequest{ActivationCode: reset.ActivationCode, PIN: "724683"}, 200, nil)
		})
	}
}

// TestPINAlreadySetIsRefused on SQLite and PostgreSQL: setting a PIN on a
// credential that has one answers 409 and is audited as the caller's
// request refused (credential.pin.set, outcome refused), not as a failure.
func TestPINAlreadySetIsRefused(t *testing.T) {
	for _, d := range storetest.Dialects() {
		t.Run(d.Name, func(t *testing.T) {
			w := newWorld(t, d, worldOptions{})
			citizen := w.token(t, "12345678", policies.RoleCitizen)
			cred, _ := w.credential(t, policies.ProfileCitizenSigning, citizenSubject())
			path := "/api/v1/credentials/" + cred + "/pin"
			if code, m := w.csc(t, path, citizen, signing.PINRequest{PIN: testPIN}); code != 201 {
				t.Fatalf("set: %d %v", code, m)
			}
			if code, m := w.csc(t, path, citizen, signing.PINRequest{PIN: "583920"}); code != 409 {
				t.Fatalf("set again: %d %v, want 409", code, m)
			}
			if n := len(w.records(t, signing.ActionPINSet, "failure", "")); n != 0 {
				t.Fatalf("%d failure records for a PIN already set", n)
			}
			if n := len(w.records(t, signing.ActionPINSet, "refused", "")); n != 1 {
				t.Fatalf("%d refused records for a PIN already set, want 1", n)
			}
		})
	}
}
