package identity_test

import (
	"testing"
	"time"

	"github.com/thiqa/thiqa/identity"
	"github.com/thiqa/thiqa/internal/audit"
	"github.com/thiqa/thiqa/internal/audit/audittest"
	"github.com/thiqa/thiqa/internal/pin"
	"github.com/thiqa/thiqa/store/storetest"
)

// TestMobileEnrolNeverLacksItsRecord on SQLite and PostgreSQL: while the
// oidc.mobile.enrol record cannot be written, enrolling a mobile ID (with
// an operator's PIN, or with an activation code) fails and leaves it
// unusable: no login PIN set, no activation code pending. Enrolling again
// once the log is back succeeds, with exactly one success record each.
func TestMobileEnrolNeverLacksItsRecord(t *testing.T) {
	for _, d := range storetest.Dialects() {
		t.Run(d.Name, func(t *testing.T) {
			ctx := t.Context()
			db := storetest.Open(t, d.NewConfig(t))
			log := audit.New(db, nil, nil, audit.Options{})
			t.Cleanup(log.Close)
			gate := audittest.New(log)
			params := pin.DefaultParams()
			params.Time, params.MemoryKiB = 1, 64
			pins, err := pin.New(db.Identity(), params)
			if err != nil {
				t.Fatal(err)
			}
			year := time.Now().Add(365 * 24 * time.Hour)
			creds := credentials{
				"cred-pin": {Certificate: credential(t, "IDCOM-12345678", year), Profile: identity.ProfileCitizenAuth, Serial: "0a"},
				"cred-act": {Certificate: credential(t, "IDCOM-23456789", year), Profile: identity.ProfileCitizenAuth, Serial: "0b"},
			}
			e := identity.Enrolment{Credentials: creds, Status: fixedStatus{Known: true}, Store: db.Identity(), PINs: pins, Audit: gate}
			// unusable checks that cred is enrolled at most as a row: no
			// PIN, no activation pending, and no record.
			unusable := func(cred string) {
				t.Helper()
				m, err := db.Identity().MobileID(ctx, cred)
				if err == nil && (m.PINSet || m.ActivationPending) {
					t.Fatalf("%s after an unrecorded enrolment: %+v", cred, m)
				}
				if n := storetest.AuditCount(t, db, identity.ActionEnrolMobile, audit.OutcomeSuccess); n != 0 {
					t.Fatalf("%s: %d enrolment records", cred, n)
				}
			}

			gate.Down.Store(true)
			if _, err := identity.EnrolMobileID(ctx, e, "cred-pin", "135790", "cli:op"); err == nil {
				t.Fatal("enrolled with the audit log down")
			}
			unusable("cred-pin")
			if _, _, err := identity.EnrolMobileIDForActivation(ctx, e, "cred-act", "cli:op"); err == nil {
				t.Fatal("enrolled for activation with the audit log down")
			}
			unusable("cred-act")
			if _, err := db.Identity().MobileCredentialID(ctx, "12345678"); err == nil {
				t.Fatal("a mobile ID usable after an unrecorded enrolment")
			}

			gate.Down.Store(false)
			if _, err := identity.EnrolMobileID(ctx, e, "cred-pin", "135790", "cli:op"); err != nil {
				t.Fatalf("enrolling again: %v", err)
			}
			if err := pins.Check(ctx, "cred-pin", "135790"); err != nil {
				t.Fatalf("the login PIN: %v", err)
			}
			_, a, err := identity.EnrolMobileIDForActivation(ctx, e, "cred-act", "cli:op")
			if err != nil {
				t.Fatalf("enrolling for activation again: %v", err)
			}
			if err := pins.Activate(ctx, "cred-act", a.Code, "864209"); err != nil {
				t.Fatalf("activation: %v", err)
			}
			if n := storetest.AuditCount(t, db, identity.ActionEnrolMobile, audit.OutcomeSuccess); n != 2 {
				t.Fatalf("%d enrolment records, want 2", n)
			}
			if rep, err := audit.Verify(ctx, db); err != nil || !rep.OK() {
				t.Fatalf("chain: %+v %v", rep, err)
			}
		})
	}
}
