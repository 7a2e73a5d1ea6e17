package store_test

import (
	"errors"
	"testing"
	"time"

	"github.com/thiqa/thiqa/identity"
	"github.com/thiqa/thiqa/signing"
	"github.com/thiqa/thiqa/store/storetest"
)

// TestMobileDirectory: the provider finds a citizen's mobile ID (enrolled,
// with a PIN) and its certificate, and the certificate of a credential; the
// signing service sees the same mobile IDs.
func TestMobileDirectory(t *testing.T) {
	for _, d := range storetest.Dialects() {
		t.Run(d.Name, func(t *testing.T) {
			ctx := ctxT(t)
			db := storetest.Open(t, d.NewConfig(t))
			certs := db.Certificates(nil)
			a := newAuthority(t, certs)
			req := citizenRequest(t)
			req.CredentialID = "cred-mob"
			got, err := a.Issue(ctx, req)
			if err != nil {
				t.Fatal(err)
			}
			s := db.Identity()
			if _, err := s.IssuedCredential(ctx, "cred-none"); !errors.Is(err, identity.ErrNotFound) {
				t.Fatalf("IssuedCredential of an unknown credential: %v", err)
			}
			ic, err := s.IssuedCredential(ctx, "cred-mob")
			if err != nil || ic.Serial != got.Serial || ic.Profile != req.Profile || !ic.Certificate.Equal(got.Certificate) {
				t.Fatalf("IssuedCredential: %+v %v", ic, err)
			}
			if _, err := s.RemoteCredential(ctx, "12345678"); !errors.Is(err, identity.ErrNotFound) {
				t.Fatalf("RemoteCredential before enrolment: %v", err)
			}
			if err := s.EnrolMobileID(ctx, "cred-mob", "12345678", time.Now()); err != nil {
				t.Fatal(err)
			}
			if _, err := s.CreatePIN(ctx, "cred-mob", "hash", nil); err != nil {
				t.Fatal(err)
			}
			rc, err := s.RemoteCredential(ctx, "12345678")
			if err != nil || rc.ID != "cred-mob" || !rc.Certificate.Equal(got.Certificate) {
				t.Fatalf("RemoteCredential: %+v %v", rc, err)
			}
			sm := db.SigningMobileIDs()
			if m, err := sm.MobileID(ctx, "cred-mob"); err != nil || !m.PINSet || m.CertSerial != got.Serial || m.CivilNumber != "12345678" {
				t.Fatalf("signing's MobileID: %+v %v", m, err)
			}
			if _, err := sm.MobileID(ctx, "cred-none"); !errors.Is(err, signing.ErrNotFound) {
				t.Fatalf("signing's MobileID of an unknown credential: %v", err)
			}
			if ms, err := sm.MobileIDsOf(ctx, "12345678"); err != nil || len(ms) != 1 || ms[0].CredentialID != "cred-mob" {
				t.Fatalf("signing's MobileIDsOf: %+v %v", ms, err)
			}
			if l, err := certs.CredentialKeyLabel(ctx, "cred-mob"); err != nil || (l != "" && l != "cred-mob") {
				t.Fatalf("CredentialKeyLabel: %q %v", l, err)
			}
		})
	}
}
