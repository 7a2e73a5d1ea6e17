package activity_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"testing"

	"github.com/thiqa/thiqa/ca"
	"github.com/thiqa/thiqa/ca/catest"
	"github.com/thiqa/thiqa/ca/revocation"
	"github.com/thiqa/thiqa/identity/activity"
	"github.com/thiqa/thiqa/internal/audit"
	"github.com/thiqa/thiqa/internal/auth"
	"github.com/thiqa/thiqa/policies"
	"github.com/thiqa/thiqa/store/storetest"
)

// A citizen whose certificate a registration officer issued and an
// operator revoked, through the real CA and revocation service, reads
// registration-officer and operator on their activity page, not
// someone-else: the success records name their caller's roles. A record
// written before they did (no caller) still reads someone-else.
func TestActivityNamesStaffOfSuccesses(t *testing.T) {
	d := storetest.Dialects()[0]
	db := storetest.Open(t, d.NewConfig(t))
	log := audit.New(db, nil, nil, audit.Options{})
	t.Cleanup(log.Close)
	pki := catest.New(t, db.Certificates(nil), log, "http://pki.thiqa.test")
	svc, err := revocation.New(revocation.Options{Store: db.Revocations(), Certificates: db.Certificates(nil), Audit: log})
	if err != nil {
		t.Fatal(err)
	}
	officer := auth.WithPrincipal(t.Context(), &auth.Principal{Subject: "officer-jane.doe", Method: auth.MethodJWT,
		Roles: []policies.Role{policies.RoleRegistrationOfficer}})
	operator := auth.WithPrincipal(t.Context(), &auth.Principal{Subject: "op-1", Method: auth.MethodMTLS,
		Roles: []policies.Role{policies.RoleOperator}})
	k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	csr, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{}, k)
	if err != nil {
		t.Fatal(err)
	}
	got, err := pki.Authority.Issue(officer, ca.Request{Profile: policies.ProfileCitizenSigning, CSR: csr, RequestedBy: "officer-jane.doe",
		Subject: map[string]string{"givenName": "Aisha", "surname": "Al Harthy", "commonName": "Aisha Al Harthy", "civilNumber": civilA, "country": "OM"}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := svc.Revoke(operator, "op-1", got.Serial, "cessationOfOperation", nil); err != nil {
		t.Fatal(err)
	}

	f := newFixture(t)
	f.log.holdings[civilA] = []activity.Holding{{Serial: got.Serial}}
	f.seed(t, audit.Entry{Actor: "officer-1", Action: "certificate.renew", Object: got.Serial, Outcome: "success",
		Details: map[string]any{"mode": "renew"}}) // written before success records named their caller
	if err := db.AuditRecords(t.Context(), 1, func(r audit.Record) error {
		if r.Object == got.Serial && r.Outcome == audit.OutcomeSuccess {
			f.log.mu.Lock()
			f.log.recs = append(f.log.recs, activity.Record{Seq: int64(len(f.log.recs) + 1), Time: r.Time, Actor: r.Actor,
				Action: r.Action, Object: r.Object, Outcome: r.Outcome, Details: r.Details})
			f.log.mu.Unlock()
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	by := map[string]string{}
	for _, e := range f.page(t, civilA, "").Entries {
		by[e.Action] = e.By
	}
	want := map[string]string{"certificate.issue": activity.ByRegistrationOfficer, "certificate.revoke": activity.ByOperator,
		"certificate.renew": activity.BySomeoneElse}
	for action, w := range want {
		if by[action] != w {
			t.Errorf("%s: by %q, want %q (all: %v)", action, by[action], w, by)
		}
	}
}

// The thiqa commands run on the host by an operator (actor cli:USER), e.g.
// `thiqa oidc mobile enrol` at the desk's request, read operator on the
// citizen's activity page: "someone else" told the citizen that a stranger
// enrolled their mobile ID, and the page tells them to revoke then.
func TestActivityNamesTheHostsCommandsOperator(t *testing.T) {
	f := newFixture(t)
	f.seed(t, audit.Entry{Actor: "cli:root", Action: "oidc.mobile.enrol", Object: "cred-a", Outcome: "success"})
	var got []string
	for _, e := range f.page(t, civilA, "").Entries {
		if e.Action == "oidc.mobile.enrol" {
			got = append(got, e.By)
		}
	}
	if len(got) != 1 || got[0] != activity.ByOperator {
		t.Fatalf("the command's mobile-ID enrolment reads by %v, want [%s]", got, activity.ByOperator)
	}
}
