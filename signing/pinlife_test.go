package signing_test

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/thiqa/thiqa/policies"
	"github.com/thiqa/thiqa/signing"
	"github.com/thiqa/thiqa/store/storetest"
)

// TestPINLifeCycle runs change, lockout, reset and activation of a signing
// PIN over SQLite and PostgreSQL with keys on SoftHSM: each refusal is a
// clear 4xx, audited, and changes nothing; the activation code is shown
// once, works once, and expires.
func TestPINLifeCycle(t *testing.T) {
	for _, d := range storetest.Dialects() {
		t.Run(d.Name, func(t *testing.T) {
			var skew atomic.Int64
			w := newWorld(t, d, worldOptions{pinClock: func() time.Time { return time.Now().Add(time.Duration(skew.Load())) }})
			citizen := w.token(t, "12345678", policies.RoleCitizen)
			other := w.token(t, "87654321", policies.RoleCitizen)
			officer := w.token(t, "officer-1", policies.RoleRegistrationOfficer)
			cred, _ := w.credential(t, policies.ProfileCitizenSigning, citizenSubject())
			seal, _ := w.credential(t, policies.ProfileOrganisationSeal, orgSubject())
			path := func(op string) string { return "/api/v1/credentials/" + cred + "/pin/" + op }
			want := func(what string, code int, m map[string]any, status int, text string) {
				t.Helper()
				if code != status || !strings.Contains(m["detail"].(string)+"", text) {
					t.Fatalf("%s: %d %v, want %d naming %q", what, code, m, status, text)
				}
			}
			sum := sha256.Sum256([]byte("a contract"))
			h := base64.StdEncoding.EncodeToString(sum[:])
			authorize := func(p string) (int, map[string]any) {
				return w.csc(t, "/csc/v2/credentials/authorize", citizen, map[string]any{"credentialID": cred, "numSignatures": 1,
					"hashes": []string{h}, "hashAlgorithmOID": "2.16.840.1.101.3.4.2.1", "PIN": p})
			}
			if code, m := w.csc(t, "/api/v1/credentials/"+cred+"/pin", citizen, signing.PINRequest{PIN: "123456"}); code != 400 {
				t.Fatalf("a trivial first PIN: %d %v", code, m)
			}
			if code, m := w.csc(t, "/api/v1/credentials/"+cred+"/pin", citizen, signing.PINRequest{PIN: testPIN}); code != 201 {
				t.Fatalf("set: %d %v", code, m)
			}

			// Change: only the owner, only with the old PIN, only to a good PIN.
			code, m := w.csc(t, path("change"), other, signing.PINChangeRequest{Old: testPIN, New: "583920"})
			want("another citizen changes the PIN", code, m, 403, "not yours")
			code, m = w.csc(t, path("change"), citizen, signing.PINChangeRequest{Old: testPIN, New: "654321"})
			want("a trivial new PIN", code, m, 400, "in order")
			code, m = w.csc(t, path("change"), citizen, signing.PINChangeRequest{Old: "583921", New: "583920"})
			want("a wrong old PIN", code, m, 403, "4 tries left")
			if code, m = w.csc(t, path("change"), citizen, signing.PINChangeRequest{Old: testPIN, New: "583920"}); code != 200 || m["pin"] != "set" {
				t.Fatalf("change: %d %v", code, m)
			}
			if code, m = authorize(testPIN); code != 400 || !strings.Contains(m["error_description"].(string), "4 tries left") {
				t.Fatalf("the old PIN after the change: %d %v", code, m)
			}
			if code, m = authorize("583920"); code != 200 {
				t.Fatalf("the new PIN: %d %v", code, m)
			}
			if n := len(w.records(t, signing.ActionPINChange, "refused", "")); n != 3 {
				t.Fatalf("%d refused change records, want 3", n)
			}

			// Lockout: the CSC error on CSC paths, 423 on the signing API.
			for range 5 {
				authorize("000001")
			}
			code, m = authorize("583920")
			wantCSC(t, "authorize when locked", code, m, 400, "invalid_request", "Credential locked")
			pdf := samplePDF(t, 4<<10)
			st, _, body := w.send(t, "/api/v1/sign?level=B-B&credential="+cred, citizen, "application/pdf", pdf, map[string]string{signing.PINHeader: "583920"})
			if st != 423 || !strings.Contains(string(body), "pin/reset") {
				t.Fatalf("sign when locked: %d %s", st, body)
			}
			if n := len(w.records(t, signing.ActionPINLocked, "success", "12345678")); n != 1 {
				t.Fatalf("%d lock records, want 1", n)
			}

			// Reset: officers only; the code is shown once and is in no record.
			code, m = w.csc(t, path("reset"), citizen, map[string]any{})
			if code != 403 {
				t.Fatalf("a citizen resets: %d %v", code, m)
			}
			code, m = w.csc(t, "/api/v1/credentials/"+seal+"/pin/reset", officer, map[string]any{})
			want("reset of a seal credential", code, m, 400, "no PIN")
			code, m = w.csc(t, "/api/v1/credentials/cred-nonexistent/pin/reset", officer, map[string]any{})
			want("reset of an unknown credential", code, m, 403, "not found")
			code, m = w.csc(t, path("reset"), officer, map[string]any{})
			var reset signing.PINResetResponse
			raw, _ := json.Marshal(m)
			if code != 200 || json.Unmarshal(raw, &reset) != nil || len(reset.ActivationCode) != 14 || reset.Kind != signing.KindSigning ||
				reset.ExpiresAt.Before(time.Now().Add(71*time.Hour)) {
				t.Fatalf("reset: %d %v", code, m)
			}
			recs := w.records(t, signing.ActionPINReset, "success", "officer-1")
			if len(recs) != 1 {
				t.Fatalf("%d reset records", len(recs))
			}
			if b, _ := json.Marshal(recs[0]); strings.Contains(string(b), reset.ActivationCode) {
				t.Fatalf("the audit record holds the activation code: %s", b)
			}
			if code, m = authorize("583920"); code != 400 || !strings.Contains(m["error_description"].(string), "no signing PIN") {
				t.Fatalf("the PIN after a reset: %d %v", code, m)
			}
			// The owner's list says an activation is pending.
			req, _ := http.NewRequest(http.MethodGet, w.srv.URL+"/api/v1/credentials?owner=self", nil)
			req.Header.Set("Authorization", "Bearer "+citizen)
			resp, err := w.srv.Client().Do(req)
			if err != nil {
				t.Fatal(err)
			}
			var own signing.OwnCredentialsResponse
			err = json.NewDecoder(resp.Body).Decode(&own)
			resp.Body.Close()
			pending := false
			for _, c := range own.Credentials {
				pending = pending || (c.CredentialID == cred && c.PIN == "activation-pending")
			}
			if err != nil || !pending {
				t.Fatalf("own credentials after a reset: %v %+v, want %s activation-pending", err, own, cred)
			}
			if code, m = w.csc(t, "/api/v1/credentials/"+cred+"/pin", citizen, signing.PINRequest{PIN: "724683"}); code != 409 {
				t.Fatalf("set without the code after a reset: %d %v", code, m)
			}

			// Activation: the owner, the right code, a good PIN; once.
			code, m = w.csc(t, path("activate"), other, signing.PINActivateRequest{ActivationCode: reset.ActivationCode, PIN: "724683"})
			want("another citizen activates", code, m, 403, "not yours")
			code, m = w.csc(t, path("activate"), citizen, signing.PINActivateRequest{ActivationCode: "0000-0000-0000", PIN: "724683"})
			want("a wrong code", code, m, 403, "4 tries left")
			code, m = w.csc(t, path("activate"), citizen, signing.PINActivateRequest{ActivationCode: reset.ActivationCode, PIN: "111111"})
			want("a trivial PIN", code, m, 400, "repeated")
			code, m = w.csc(t, path("activate"), citizen, signing.PINActivateRequest{ActivationCode: "0000-0000-0000", PIN: "724683"})
			want("the policy refusal counted nothing", code, m, 403, "3 tries left")
			if code, m = w.csc(t, path("activate"), citizen, signing.PINActivateRequest{ActivationCode: strings.ToLower(reset.ActivationCode), PIN: "724683"}); code != 200 {
				t.Fatalf("activate: %d %v", code, m)
			}
			if code, m = authorize("724683"); code != 200 {
				t.Fatalf("the activated PIN: %d %v", code, m)
			}
			code, m = w.csc(t, path("activate"), citizen, signing.PINActivateRequest{ActivationCode: reset.ActivationCode, PIN: "835794"})
			want("a reused code", code, m, 409, "no activation code is pending")

			// An expired code.
			code, m = w.csc(t, path("reset"), officer, map[string]any{})
			raw, _ = json.Marshal(m)
			_ = json.Unmarshal(raw, &reset)
			skew.Store(int64(73 * time.Hour))
			code, m = w.csc(t, path("activate"), citizen, signing.PINActivateRequest{ActivationCode: reset.ActivationCode, PIN: "835794"})
			want("an expired code", code, m, 410, "expired")
			if m["type"] != signing.ProblemActivationCodeExpired {
				t.Fatalf("an expired code's problem type: %v", m)
			}

			// Wrong codes: each is 403 with its type; the one that uses
			// the last try says the code is now void; then none is pending.
			skew.Store(0)
			code, m = w.csc(t, path("reset"), officer, map[string]any{})
			raw, _ = json.Marshal(m)
			_ = json.Unmarshal(raw, &reset)
			for i := 4; i >= 0; i-- {
				code, m = w.csc(t, path("activate"), citizen, signing.PINActivateRequest{ActivationCode: "0000-0000-0000", PIN: "835794"})
				typ := signing.ProblemWrongActivationCode
				if i == 0 {
					typ = signing.ProblemActivationCodeVoid
				}
				if code != 403 || m["type"] != typ {
					t.Fatalf("wrong code with %d tries left after it: %d %v, want 403 %s", i, code, m, typ)
				}
			}
			code, m = w.csc(t, path("activate"), citizen, signing.PINActivateRequest{ActivationCode: reset.ActivationCode, PIN: "835794"})
			want("the voided code", code, m, 409, "no activation code is pending")
			if n := len(w.records(t, signing.ActionPINActivate, "refused", "")); n != 12 {
				t.Fatalf("%d refused activation records, want 12", n)
			}
			w.verifyAudit(t)
		})
	}
}
