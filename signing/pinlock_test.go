package signing_test

import (
	"context"
	"crypto"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/thiqa/thiqa/internal/audit"
	"github.com/thiqa/thiqa/internal/pin"
	"github.com/thiqa/thiqa/policies"
	"github.com/thiqa/thiqa/signing"
	"github.com/thiqa/thiqa/signing/csc"
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

// TestPINLockRecordNamesTheCitizen on SQLite and PostgreSQL: a signing PIN
// locked through the digital ID's signing-PIN page (csc.API.CheckPIN, a
// request without a principal) is recorded as credential.pin.locked with
// the citizen who owns the credential as actor and owner, so that it shows
// in the citizen's activity; the record holds neither the PIN nor its
// hash.
func TestPINLockRecordNamesTheCitizen(t *testing.T) {
	for _, d := range storetest.Dialects() {
		t.Run(d.Name, func(t *testing.T) {
			w := newWorld(t, d, worldOptions{})
			const civil = "12345678"
			citizen := w.token(t, civil, policies.RoleCitizen)
			cred, _ := w.credential(t, policies.ProfileCitizenSigning, citizenSubject())
			if code, m := w.csc(t, "/api/v1/credentials/"+cred+"/pin", citizen, signing.PINRequest{PIN: testPIN}); code != 201 {
				t.Fatalf("set: %d %v", code, m)
			}
			sum := sha256.Sum256([]byte("a contract"))
			az := csc.CredentialAuthorization{Citizen: civil, CredentialID: cred, Hash: crypto.SHA256, Hashes: [][]byte{sum[:]}, Client: "oidc-app"}
			var we *pin.WrongError
			for i := range 5 {
				if err := w.api.CheckPIN(context.Background(), az, "000001"); !errors.As(err, &we) || we.Remaining != 4-i {
					t.Fatalf("wrong try %d: %v", i+1, err)
				}
			}
			recs := w.records(t, signing.ActionPINLocked, "success", "")
			if len(recs) != 1 {
				t.Fatalf("%d lock records, want 1", len(recs))
			}
			r := recs[0]
			var details map[string]any
			if err := json.Unmarshal(r.Details, &details); err != nil {
				t.Fatal(err)
			}
			if r.Actor != civil || r.Object != cred || details["owner"] != civil {
				t.Fatalf("lock record: actor %q, object %q, details %s; want the citizen %s and credential %s", r.Actor, r.Object, r.Details, civil, cred)
			}
			if strings.Contains(string(r.Details), "argon2") || strings.Contains(string(r.Details), "000001") || strings.Contains(string(r.Details), testPIN) {
				t.Fatalf("lock record holds a PIN or its hash: %s", r.Details)
			}
		})
	}
}

// TestPINLockRecordNamesTheOwnerOnTheSigningAPI on SQLite and PostgreSQL:
// the wrong PIN that locks a credential through POST /api/v1/sign leaves
// a credential.pin.locked record with the citizen as actor and as owner
// (the officer's reset record names the owner too; an auditor asking
// whose PIN was locked reads it from the record), and without the PIN.
func TestPINLockRecordNamesTheOwnerOnTheSigningAPI(t *testing.T) {
	for _, d := range storetest.Dialects() {
		t.Run(d.Name, func(t *testing.T) {
			w := newWorld(t, d, worldOptions{})
			const civil = "12345678"
			citizen := w.token(t, civil, policies.RoleCitizen)
			cred, _ := w.credential(t, policies.ProfileCitizenSigning, citizenSubject())
			if code, m := w.csc(t, "/api/v1/credentials/"+cred+"/pin", citizen, signing.PINRequest{PIN: testPIN}); code != 201 {
				t.Fatalf("set: %d %v", code, m)
			}
			pdf := samplePDF(t, 4<<10)
			for i := range 5 {
				st, _, body := w.send(t, "/api/v1/sign?level=B-B&credential="+cred, citizen, "application/pdf", pdf, map[string]string{signing.PINHeader: "000001"})
				if want := map[bool]int{true: 423, false: 403}[i == 4]; st != want {
					t.Fatalf("wrong try %d: %d %s, want %d", i+1, st, body, want)
				}
			}
			recs := w.records(t, signing.ActionPINLocked, "success", "")
			if len(recs) != 1 {
				t.Fatalf("%d lock records, want 1", len(recs))
			}
			r := recs[0]
			var details map[string]any
			if err := json.Unmarshal(r.Details, &details); err != nil {
				t.Fatal(err)
			}
			if r.Actor != civil || r.Object != cred || details["owner"] != civil {
				t.Fatalf("lock record: actor %q, object %q, details %s; want the citizen %s as actor and owner of %s", r.Actor, r.Object, r.Details, civil, cred)
			}
			if strings.Contains(string(r.Details), "000001") || strings.Contains(string(r.Details), testPIN) {
				t.Fatalf("lock record holds a PIN: %s", r.Details)
			}
		})
	}
}
