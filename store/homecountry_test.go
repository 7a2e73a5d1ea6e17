package store_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/thiqa/thiqa/internal/audit"
	"github.com/thiqa/thiqa/policies"
	"github.com/thiqa/thiqa/store/storetest"
)

// The CA of an OM deployment (the profiles as hierarchy.OpenAuthority
// applies them) refuses a citizen certificate of another country's civil
// number: a *policies.SubjectError on country naming both countries and
// ca.profiles.countries, no row stored, one refusal record. The OM citizen
// is issued; a profile listing AE (ca.profiles.countries) issues to AE.
func TestIssueHomeCountry(t *testing.T) {
	for _, d := range storetest.Dialects() {
		t.Run(d.Name, func(t *testing.T) {
			ctx := ctxT(t)
			db := storetest.Open(t, d.NewConfig(t))
			log := audit.New(db, nil, nil, audit.Options{})
			t.Cleanup(log.Close)
			certs := db.Certificates(func(string) int { return 4 })
			defaults, err := policies.DefaultProfiles(policies.DefaultsConfig{})
			if err != nil {
				t.Fatal(err)
			}
			a := newAuthorityWith(t, certs, log, defaults.WithHomeCountry("OM"))
			count := func(q string) int64 {
				t.Helper()
				n, err := db.QueryInt64(ctx, q)
				if err != nil {
					t.Fatal(err)
				}
				return n
			}

			foreign := citizenRequest(t)
			foreign.Subject["country"] = "AE"
			rows, head := count("SELECT count(*) FROM certificates"), count("SELECT coalesce(max(seq), 0) FROM audit_log")
			_, err = a.Issue(ctx, foreign)
			var se *policies.SubjectError
			if !errors.As(err, &se) || se.Field != "country" || !strings.Contains(se.Reason, "country AE") ||
				!strings.Contains(se.Reason, "OM only") || !strings.Contains(se.Reason, "ca.profiles.countries") {
				t.Fatalf("IDCAE request: %v, want a refusal of country AE naming OM and ca.profiles.countries", err)
			}
			if n := count("SELECT count(*) FROM certificates"); n != rows {
				t.Errorf("the refusal stored %d rows", n-rows)
			}
			var recs []audit.Record
			if err := db.AuditRecords(ctx, head+1, func(r audit.Record) error { recs = append(recs, r); return nil }); err != nil {
				t.Fatal(err)
			}
			if len(recs) != 1 || recs[0].Action != string(policies.ActionIssueCertificate) || recs[0].Outcome != audit.OutcomeRefused ||
				recs[0].Actor != "officer-1" || !strings.Contains(string(recs[0].Details), "country AE") {
				t.Fatalf("audit records after the refusal: %+v", recs)
			}

			if got, err := a.Issue(ctx, citizenRequest(t)); err != nil || got.Certificate.Subject.SerialNumber != "IDCOM-12345678" {
				t.Fatalf("OM citizen: %v", err)
			}

			listed, err := policies.DefaultProfiles(policies.DefaultsConfig{Countries: map[string][]string{policies.ProfileCitizenAuth: {"OM", "AE"}}})
			if err != nil {
				t.Fatal(err)
			}
			b := newAuthorityWith(t, certs, log, listed.WithHomeCountry("OM"))
			foreign = citizenRequest(t)
			foreign.Subject["country"] = "AE"
			if got, err := b.Issue(ctx, foreign); err != nil || got.Certificate.Subject.SerialNumber != "IDCAE-12345678" {
				t.Fatalf("AE citizen with ca.profiles.countries [OM, AE]: %v", err)
			}
		})
	}
}
