package identity_test

import (
	"errors"
	"testing"
	"time"

	"github.com/thiqa/thiqa/identity"
	"github.com/thiqa/thiqa/internal/audit"
	"github.com/thiqa/thiqa/internal/pin"
	"github.com/thiqa/thiqa/store/storetest"
)

// A certificate of another country's national identity number is not
// enrolled as mobile ID in a deployment that knows its country: it could
// never log in. Nothing is stored; a deployment without a country enrols
// it as before.
func TestEnrolMobileIDOtherCountry(t *testing.T) {
	for _, d := range storetest.Dialects() {
		t.Run(d.Name, func(t *testing.T) {
			ctx := t.Context()
			db := storetest.Open(t, d.NewConfig(t))
			log := audit.New(db, nil, nil, audit.Options{})
			t.Cleanup(log.Close)
			params := pin.DefaultParams()
			params.Time, params.MemoryKiB = 1, 64
			pins, err := pin.New(db.Identity(), params)
			if err != nil {
				t.Fatal(err)
			}
			year := time.Now().Add(365 * 24 * time.Hour)
			creds := credentials{
				"cred-ae": {Certificate: credential(t, "IDCAE-12345678", year), Profile: identity.ProfileCitizenAuth, Serial: "0a"},
				"cred-om": {Certificate: credential(t, "IDCOM-12345678", year), Profile: identity.ProfileCitizenAuth, Serial: "0b"},
			}
			e := identity.Enrolment{Credentials: creds, Status: fixedStatus{Known: true}, Store: db.Identity(), PINs: pins, Audit: log, Country: "OM"}
			if _, err := identity.EnrolMobileID(ctx, e, "cred-ae", "135790", "cli:op"); !errors.Is(err, identity.ErrOtherCountry) {
				t.Fatalf("IDCAE certificate enrolled with a PIN: %v", err)
			}
			if _, _, err := identity.EnrolMobileIDForActivation(ctx, e, "cred-ae", "cli:op"); !errors.Is(err, identity.ErrOtherCountry) {
				t.Fatalf("IDCAE certificate enrolled for activation: %v", err)
			}
			if _, err := db.Identity().MobileID(ctx, "cred-ae"); !errors.Is(err, identity.ErrNotFound) {
				t.Fatalf("the refused enrolment was stored: %v", err)
			}
			if n := storetest.AuditCount(t, db, identity.ActionEnrolMobile, audit.OutcomeSuccess); n != 0 {
				t.Fatalf("%d enrolments recorded, want none", n)
			}
			if civil, err := identity.EnrolMobileID(ctx, e, "cred-om", "135790", "cli:op"); err != nil || civil != "12345678" {
				t.Fatalf("IDCOM certificate: %q %v", civil, err)
			}
			e.Country = ""
			if civil, err := identity.EnrolMobileID(ctx, e, "cred-ae", "246801", "cli:op"); err != nil || civil != "12345678" {
				t.Fatalf("no country known: %q %v", civil, err)
			}
		})
	}
}
