package signing_test

import (
	"bytes"
	"context"
	"crypto"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/thiqa/thiqa/ca"
	"github.com/thiqa/thiqa/internal/auth"
	"github.com/thiqa/thiqa/policies"
	"github.com/thiqa/thiqa/signing"
	"github.com/thiqa/thiqa/store/storetest"
)

// worldKeys makes keyInHSM keys on the world's token, as cmd/thiqa's
// tokenKeys does.
type worldKeys struct{ w *world }

func (k worldKeys) GenerateKey(ctx context.Context, _ string) (string, crypto.PublicKey, error) {
	var b [16]byte
	_, _ = rand.Read(b[:])
	id := "cred-" + hex.EncodeToString(b[:])
	key, err := k.w.tok.GenerateKey(ctx, id, k.w.keyType)
	if err != nil {
		return "", nil, err
	}
	return id, key.Public(), nil
}

func (worldKeys) DeleteKey(context.Context, string) error { return nil }

// officerDesk serves the CA's POST /api/v1/certificates to officer-1 over
// the world's authority and token, its Issued hook registering the
// credential as cmd/thiqa wires it (failing while *hookDown is set). It
// returns the issuance of a keyInHSM credential: its status, raw answer and
// decoded answer.
func officerDesk(t *testing.T, w *world, firstPIN bool, hookDown *bool) func(profile string, subject map[string]string) (int, []byte, ca.IssueResponse) {
	t.Helper()
	api := ca.NewAPI(w.authority, ca.HandlerOptions{KeyGenerator: worldKeys{w}, FirstPINActivation: firstPIN,
		Issued: func(ctx context.Context, got *ca.Issued) (ca.Registration, error) {
			if *hookDown {
				return ca.Registration{}, errors.New("the signing store is down")
			}
			a, err := w.svc.RegisterIssuedBy(ctx, signing.IssuedCertificate{CredentialID: got.CredentialID, CA: got.CA,
				Profile: got.Profile, Serial: got.Serial, DER: got.Certificate.Raw})
			return ca.Registration{ActivationCode: a.Code, ActivationExpires: a.ExpiresAt}, err
		}})
	mux := http.NewServeMux()
	api.Register(mux, func(policies.Action) func(http.Handler) http.Handler {
		return func(h http.Handler) http.Handler { return h }
	})
	officer := &auth.Principal{Subject: "officer-1", Roles: []policies.Role{policies.RoleRegistrationOfficer}}
	srv := httptest.NewServer(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		mux.ServeHTTP(rw, r.WithContext(auth.WithPrincipal(r.Context(), officer)))
	}))
	t.Cleanup(srv.Close)
	return func(profile string, subject map[string]string) (int, []byte, ca.IssueResponse) {
		t.Helper()
		body, _ := json.Marshal(ca.IssueRequest{Profile: profile, Subject: subject, KeyInHSM: true})
		resp, err := http.Post(srv.URL+"/api/v1/certificates", "application/json", bytes.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		raw, _ := io.ReadAll(resp.Body)
		var out ca.IssueResponse
		if resp.StatusCode != http.StatusCreated || json.Unmarshal(raw, &out) != nil || out.CredentialID == "" {
			t.Fatalf("issuing %s: %d %s", profile, resp.StatusCode, raw)
		}
		return resp.StatusCode, raw, out
	}
}

// TestFirstPINActivation, on SQLite and PostgreSQL with keys on SoftHSM:
// with signing.pinPolicy.firstPINActivation an officer's keyInHSM issuance
// of a citizen's signing credential answers a one-time activation code
// (none for a seal), recorded but never written down; the citizen's bearer
// token alone sets no first PIN (409, audited as refused), not for a
// credential issued before the setting was on nor for one whose
// registration at issuance failed; the code sets the PIN (a wrong one
// counted as any activation's) and the credential signs.
func TestFirstPINActivation(t *testing.T) {
	for _, d := range storetest.Dialects() {
		t.Run(d.Name, func(t *testing.T) {
			w := newWorld(t, d, worldOptions{firstPINActivation: true})
			citizen := w.token(t, "12345678", policies.RoleCitizen)
			officer := w.token(t, "officer-1", policies.RoleRegistrationOfficer)
			// Issued before the setting was on: registered on first use.
			before, _ := w.credential(t, policies.ProfileCitizenSigning, citizenSubject())
			hookDown := false
			desk := officerDesk(t, w, true, &hookDown)

			_, raw, got := desk(policies.ProfileCitizenSigning, citizenSubject())
			cred := got.CredentialID
			if len(got.ActivationCode) != 14 || got.ActivationCodeExpiresAt == nil || got.ActivationCodeExpiresAt.Before(time.Now().Add(71*time.Hour)) {
				t.Fatalf("issuance answer %s", raw)
			}
			for _, r := range append(w.records(t, string(policies.ActionIssueCertificate), "success", "officer-1"), w.records(t, signing.ActionPINReset, "success", "")...) {
				if strings.Contains(string(r.Details), got.ActivationCode) {
					t.Fatalf("a record holds the activation code: %s", r.Details)
				}
			}
			issued := w.records(t, string(policies.ActionIssueCertificate), "success", "officer-1")
			if len(issued) == 0 || !strings.Contains(string(issued[len(issued)-1].Details), `"firstPIN":"activationCode"`) {
				t.Fatalf("the issuance's record does not say the first PIN needs an activation code: %v", issued)
			}
			codes := w.records(t, signing.ActionPINReset, "success", "officer-1")
			if len(codes) != 1 || codes[0].Object != cred || !strings.Contains(string(codes[0].Details), `"firstPIN":true`) ||
				!strings.Contains(string(codes[0].Details), got.Serial) {
				t.Fatalf("the activation code's record: %+v", codes)
			}
			if _, raw, seal := desk(policies.ProfileOrganisationSeal, orgSubject()); seal.ActivationCode != "" || bytes.Contains(raw, []byte("activationCode")) {
				t.Fatalf("a seal's issuance answers %s", raw)
			}
			// A mobile ID's key (citizen-auth) keeps its own enrolment code
			// (thiqa oidc mobile enrol): its issuance answers none.
			if _, raw, auth := desk(policies.ProfileCitizenAuth, citizenSubject()); auth.ActivationCode != "" || bytes.Contains(raw, []byte("activationCode")) {
				t.Fatalf("a citizen-auth issuance answers %s", raw)
			}
			if n := len(w.records(t, signing.ActionPINReset, "success", "officer-1")); n != 1 {
				t.Fatalf("%d activation code records after a seal and a citizen-auth issuance, want 1", n)
			}

			// The bearer token alone sets no first PIN.
			path := func(id, op string) string { return "/api/v1/credentials/" + id + "/pin" + op }
			code, m := w.csc(t, path(cred, ""), citizen, signing.PINRequest{PIN: testPIN})
			if code != 409 || !strings.Contains(m["detail"].(string), "awaits its activation code") || m["type"] != signing.ProblemFirstPINActivation {
				t.Fatalf("a first PIN without the code: %d %v", code, m)
			}
			code, m = w.csc(t, path(before, ""), citizen, signing.PINRequest{PIN: testPIN})
			if code != 409 || !strings.Contains(m["detail"].(string), "pin/reset") || m["type"] != signing.ProblemFirstPINActivation {
				t.Fatalf("a first PIN without a code, credential issued before the setting: %d %v", code, m)
			}
			if n := len(w.records(t, signing.ActionPINSet, "refused", "12345678")); n != 2 {
				t.Fatalf("%d refused credential.pin.set records, want 2", n)
			}

			// Signing before the PIN is set points to the activation too:
			// with the setting, .../pin alone is refused.
			st, _, body := w.send(t, "/api/v1/sign?level=B-B&credential="+cred, citizen, "application/pdf", samplePDF(t, 4<<10), map[string]string{signing.PINHeader: testPIN})
			if st != 403 || !bytes.Contains(body, []byte("no signing PIN is set")) || !bytes.Contains(body, []byte("/pin/activate")) {
				t.Fatalf("sign before the first PIN: %d %s", st, body)
			}

			// A wrong code counts as any activation's; the right one sets the PIN.
			code, m = w.csc(t, path(cred, "/activate"), citizen, signing.PINActivateRequest{ActivationCode: "0000-0000-0000", PIN: testPIN})
			if code != 403 || !strings.Contains(m["detail"].(string), "4 tries left") || m["type"] != signing.ProblemWrongActivationCode {
				t.Fatalf("a wrong code: %d %v", code, m)
			}
			if code, m = w.csc(t, path(cred, "/activate"), citizen, signing.PINActivateRequest{ActivationCode: got.ActivationCode, PIN: testPIN}); code != 200 {
				t.Fatalf("activate: %d %v", code, m)
			}
			st, _, body = w.send(t, "/api/v1/sign?level=B-B&credential="+cred, citizen, "application/pdf", samplePDF(t, 4<<10), map[string]string{signing.PINHeader: testPIN})
			if st != 200 || !bytes.HasPrefix(body, []byte("%PDF")) {
				t.Fatalf("sign with the activated PIN: %d %.300s", st, body)
			}
			code, m = w.csc(t, path(cred, ""), citizen, signing.PINRequest{PIN: "583920"})
			if code != 409 || !strings.Contains(m["detail"].(string), "already set") || m["type"] != nil {
				t.Fatalf("a PIN over the activated one: %d %v", code, m)
			}

			// Issued before the setting: an officer's reset issues the code.
			code, m = w.csc(t, path(before, "/reset"), officer, map[string]any{})
			if code != 200 {
				t.Fatalf("reset: %d %v", code, m)
			}
			if code, m = w.csc(t, path(before, "/activate"), citizen, signing.PINActivateRequest{ActivationCode: m["activationCode"].(string), PIN: testPIN}); code != 200 {
				t.Fatalf("activate after the reset: %d %v", code, m)
			}

			// The registration at issuance fails: no code, and still no
			// first PIN with the bearer token alone.
			hookDown = true
			_, raw, lost := desk(policies.ProfileCitizenSigning, citizenSubject())
			if lost.ActivationCode != "" || bytes.Contains(raw, []byte("activationCode")) {
				t.Fatalf("issuance with the hook failing answers %s", raw)
			}
			code, m = w.csc(t, path(lost.CredentialID, ""), citizen, signing.PINRequest{PIN: testPIN})
			if code != 409 || !strings.Contains(m["detail"].(string), "pin/reset") {
				t.Fatalf("a first PIN without a code after a failed registration: %d %v", code, m)
			}
			w.verifyAudit(t)
		})
	}
}

// TestFirstPINActivationOff: without the setting (the default) an
// issuance's answer has no activationCode key, and the citizen sets the
// first PIN with the bearer token, as before.
func TestFirstPINActivationOff(t *testing.T) {
	for _, d := range storetest.Dialects() {
		t.Run(d.Name, func(t *testing.T) {
			w := newWorld(t, d, worldOptions{})
			citizen := w.token(t, "12345678", policies.RoleCitizen)
			hookDown := false
			_, raw, got := officerDesk(t, w, false, &hookDown)(policies.ProfileCitizenSigning, citizenSubject())
			if bytes.Contains(raw, []byte("activationCode")) {
				t.Fatalf("issuance answer %s", raw)
			}
			if code, m := w.csc(t, "/api/v1/credentials/"+got.CredentialID+"/pin", citizen, signing.PINRequest{PIN: testPIN}); code != 201 {
				t.Fatalf("set the first PIN: %d %v", code, m)
			}
			if n := len(w.records(t, signing.ActionPINReset, "success", "")); n != 0 {
				t.Fatalf("%d activation records", n)
			}
			for _, r := range w.records(t, string(policies.ActionIssueCertificate), "success", "officer-1") {
				if strings.Contains(string(r.Details), "firstPIN") {
					t.Fatalf("the issuance's record %s", r.Details)
				}
			}
		})
	}
}
