package store_test

import (
	"errors"
	"testing"
	"time"

	"github.com/thiqa/thiqa/identity"
	"github.com/thiqa/thiqa/store/storetest"
)

// A mobile ID is stored by the bare number, so the OM and the AE holder of
// 12345678 may both have one. The store gives every enrolment with a PIN,
// newest first, each with its current certificate, whose serialNumber
// names the country (the provider and the signing service skip another
// country's); the signing service's view carries the certificate too.
func TestMobileIDsOfTheSameNumber(t *testing.T) {
	for _, d := range storetest.Dialects() {
		t.Run(d.Name, func(t *testing.T) {
			ctx := ctxT(t)
			db := storetest.Open(t, d.NewConfig(t))
			a := newAuthority(t, db.Certificates(nil))
			s := db.Identity()
			if _, err := s.RemoteCredentials(ctx, "12345678"); !errors.Is(err, identity.ErrNotFound) {
				t.Fatalf("before any enrolment: %v", err)
			}
			now := time.Now()
			for i, country := range []string{"OM", "AE"} {
				req := citizenRequest(t)
				req.Subject["country"] = country
				req.CredentialID = "cred-" + country
				if _, err := a.Issue(ctx, req); err != nil {
					t.Fatal(err)
				}
				if err := s.EnrolMobileID(ctx, req.CredentialID, "12345678", now.Add(time.Duration(i)*time.Second)); err != nil {
					t.Fatal(err)
				}
				if _, err := s.CreatePIN(ctx, req.CredentialID, "hash", nil); err != nil {
					t.Fatal(err)
				}
			}
			rcs, err := s.RemoteCredentials(ctx, "12345678")
			if err != nil || len(rcs) != 2 || rcs[0].ID != "cred-AE" || rcs[0].Certificate.Subject.SerialNumber != "IDCAE-12345678" ||
				rcs[1].ID != "cred-OM" || rcs[1].Certificate.Subject.SerialNumber != "IDCOM-12345678" {
				t.Fatalf("RemoteCredentials: %+v %v", rcs, err)
			}
			ms, err := db.SigningMobileIDs().MobileIDsOf(ctx, "12345678")
			if err != nil || len(ms) != 2 || ms[0].Certificate == nil || ms[0].Certificate.Subject.SerialNumber != "IDCOM-12345678" ||
				ms[1].Certificate == nil || ms[1].Certificate.Subject.SerialNumber != "IDCAE-12345678" {
				t.Fatalf("signing's MobileIDsOf: %+v %v", ms, err)
			}
			if m, err := db.SigningMobileIDs().MobileID(ctx, "cred-AE"); err != nil || m.Certificate == nil || m.Certificate.Subject.SerialNumber != "IDCAE-12345678" {
				t.Fatalf("signing's MobileID: %+v %v", m, err)
			}
		})
	}
}
