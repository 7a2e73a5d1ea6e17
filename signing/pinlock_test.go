package signing_test

import (
	"crypto/sha256"
	"encoding/base64"
	"testing"

	"github.com/thiqa/thiqa/internal/audit"
	"github.com/thiqa/thiqa/policies"
	"github.com/thiqa/thiqa/signing"
	"github.com/thiqa/thiqa/store/storetest"
)

// TestPINLockNeverLacksItsRecord on SQLite and PostgreSQL, through the CSC
// API: when the credential.pin.locked record cannot be written, the
// wrong try that locks the PIN is answered 500 (not "wrong PIN" nor
// "locked"), the try still counts (the right PIN is refused as locked
// next) and no lock record exists; after an officer's reset and a new
// PIN, the try that locks it again is answered as locked with exactly one
// lock record.
func TestPINLockNeverLacksItsRecord(t *testing.T) {
	for _, d := range storetest.Dialects() {
		t.Run(d.Name, func(t *testing.T) {
			w := newWorld(t, d, worldOptions{})
			citizen := w.token(t, "12345678", policies.RoleCitizen)
			officer := w.token(t, "officer-1", policies.RoleRegistrationOfficer)
			cred, _ := w.credential(t, policies.ProfileCitizenSigning, citizenSubject())
			path := "/api/v1/credentials/" + cred + "/pin"
			if code, m := w.csc(t, path, citizen, signing.PINRequest{PIN: testPIN}); code != 201 {
				t.Fatalf("set: %d %v", code, m)
			}
			sum := sha256.Sum256([]byte("a contract"))
			authorize := func(p string) (int, map[string]any) {
				return w.csc(t, "/csc/v2/credentials/authorize", citizen, map[string]any{"credentialID": cred, "numSignatures": 1,
					"hashes": []string{base64.StdEncoding.EncodeToString(sum[:])}, "hashAlgorithmOID": "2.16.840.1.101.3.4.2.1", "PIN": p})
			}
			for range 4 {
				authorize("000001")
			}
			w.auditGate.Only = func(e audit.Entry) bool { return e.Action == signing.ActionPINLocked }
			w.auditGate.Down.Store(true)
			code, m := authorize("000001")
			w.auditGate.Down.Store(false)
			if code != 500 {
				t.Fatalf("the locking try whose record was refused: %d %v", code, m)
			}
			code, m = authorize(testPIN)
			wantCSC(t, "the right PIN after the unrecorded lock", code, m, 400, "invalid_request", "Credential locked")
			if n := len(w.records(t, signing.ActionPINLocked, "success", "")); n != 0 {
				t.Fatalf("%d lock records of a refused record", n)
			}

			code, m = w.csc(t, path+"/reset", officer, map[string]any{})
			if code != 200 {
				t.Fatalf("reset: %d %v", code, m)
			}
			if code, m = w.csc(t, path+"/activate", citizen, signing.PINActivateRequest{ActivationCode: m["activationCode"].(string), PIN: "724683"}); code != 200 {
				t.Fatalf("activate: %d %v", code, m)
			}
			for range 4 {
				authorize("000001")
			}
			code, m = authorize("000001")
			wantCSC(t, "the locking try", code, m, 400, "invalid_request", "Credential locked")
			if n := len(w.records(t, signing.ActionPINLocked, "success", "")); n != 1 {
				t.Fatalf("%d lock records, want 1", n)
			}
		})
	}
}
