package signing_test

import (
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/thiqa/thiqa/policies"
	"github.com/thiqa/thiqa/signing"
	"github.com/thiqa/thiqa/store/storetest"
)

// A mobile ID is stored by the bare number: in an OM deployment the
// IDCAE-12345678 holder's mobile ID is not the OM citizen 12345678's. The
// citizen neither sees it in their credentials nor changes or activates
// its login PIN; their own mobile ID they manage as before. An officer
// still resets it (the desk has checked who is in front of them).
func TestForeignMobileIDIsNotOwnCitizens(t *testing.T) {
	for _, d := range storetest.Dialects() {
		t.Run(d.Name, func(t *testing.T) {
			ctx := t.Context()
			w := newWorld(t, d, worldOptions{country: "OM", mobileIDs: true})
			foreignSubject := citizenSubject()
			foreignSubject["country"] = "AE"
			own, _ := w.credential(t, policies.ProfileCitizenAuth, citizenSubject())
			foreign, cert := w.credential(t, policies.ProfileCitizenAuth, foreignSubject)
			if cert.Subject.SerialNumber != "IDCAE-12345678" {
				t.Fatalf("foreign subject %s", cert.Subject)
			}
			for _, id := range []string{own, foreign} {
				if err := w.db.Identity().EnrolMobileID(ctx, id, "12345678", time.Now()); err != nil {
					t.Fatal(err)
				}
				if err := w.mobilePINs.Set(ctx, id, testPIN); err != nil {
					t.Fatal(err)
				}
			}
			citizen := w.token(t, "12345678", policies.RoleCitizen)
			officer := w.token(t, "officer-1", policies.RoleRegistrationOfficer)

			req, err := http.NewRequestWithContext(ctx, http.MethodGet, w.srv.URL+"/api/v1/credentials?owner=self", nil)
			if err != nil {
				t.Fatal(err)
			}
			req.Header.Set("Authorization", "Bearer "+citizen)
			resp, err := w.srv.Client().Do(req)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if code := resp.StatusCode; code != 200 || strings.Contains(string(body), foreign) || !strings.Contains(string(body), own) {
				t.Fatalf("the OM citizen's credentials: %d %s", resp.StatusCode, body)
			}
			path := func(id, op string) string { return "/api/v1/credentials/" + id + "/pin/" + op }
			if code, m := w.csc(t, path(foreign, "change"), citizen, signing.PINChangeRequest{Old: testPIN, New: "583920"}); code != 403 {
				t.Fatalf("the OM citizen changed the foreign mobile ID's PIN: %d %v", code, m)
			}
			if err := w.mobilePINs.Check(ctx, foreign, testPIN); err != nil {
				t.Fatalf("the foreign mobile ID's PIN after a refused change: %v", err)
			}
			code, m := w.csc(t, path(foreign, "reset"), officer, map[string]any{})
			raw, _ := json.Marshal(m)
			var reset signing.PINResetResponse
			if code != 200 || json.Unmarshal(raw, &reset) != nil || reset.Kind != signing.KindMobileID {
				t.Fatalf("an officer's reset of the foreign mobile ID: %d %v", code, m)
			}
			if code, m := w.csc(t, path(foreign, "activate"), citizen, signing.PINActivateRequest{ActivationCode: reset.ActivationCode, PIN: "583920"}); code != 403 {
				t.Fatalf("the OM citizen activated the foreign mobile ID: %d %v", code, m)
			}
			if code, m := w.csc(t, path(own, "change"), citizen, signing.PINChangeRequest{Old: testPIN, New: "583920"}); code != 200 || m["kind"] != signing.KindMobileID {
				t.Fatalf("the OM citizen's own mobile ID: %d %v", code, m)
			}
		})
	}
}
