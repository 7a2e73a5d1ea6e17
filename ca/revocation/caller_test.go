package revocation_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/json"
	"slices"
	"testing"

	"github.com/thiqa/thiqa/ca"
	"github.com/thiqa/thiqa/ca/catest"
	"github.com/thiqa/thiqa/ca/revocation"
	"github.com/thiqa/thiqa/internal/audit"
	"github.com/thiqa/thiqa/internal/auth"
	"github.com/thiqa/thiqa/policies"
	"github.com/thiqa/thiqa/store/storetest"
)

// callerRoles returns the roles of the caller rec's details name, and
// whether they name one.
func callerRoles(t *testing.T, rec audit.Record) ([]string, bool) {
	t.Helper()
	var d struct {
		Caller *struct {
			Roles []string `json:"roles"`
		} `json:"caller"`
	}
	if err := json.Unmarshal(rec.Details, &d); err != nil {
		t.Fatal(err)
	}
	if d.Caller == nil {
		return nil, false
	}
	return d.Caller.Roles, true
}

// The success records of an issuance and of revocations name the
// authenticated caller that made them, by role, as refusals do: a
// citizen's activity page and notifications tell an officer or an
// operator from someone else. The consequences of a keyCompromise
// revocation name it too; a revocation by a service under its own name,
// even inside a request, names none.
func TestSuccessRecordsNameTheCaller(t *testing.T) {
	for _, d := range storetest.Dialects() {
		t.Run(d.Name, func(t *testing.T) {
			db := storetest.Open(t, d.NewConfig(t))
			log := audit.New(db, nil, nil, audit.Options{})
			t.Cleanup(log.Close)
			pki := catest.New(t, db.Certificates(nil), log, baseURL)
			svc, err := revocation.New(revocation.Options{Store: db.Revocations(), Certificates: db.Certificates(nil), Audit: log})
			if err != nil {
				t.Fatal(err)
			}
			officer := auth.WithPrincipal(t.Context(), &auth.Principal{Subject: "officer-7", Method: auth.MethodJWT,
				Roles: []policies.Role{policies.RoleRegistrationOfficer}})
			operator := auth.WithPrincipal(t.Context(), &auth.Principal{Subject: "op-1", Method: auth.MethodMTLS,
				Roles: []policies.Role{policies.RoleOperator}})
			issue := func(k *ecdsa.PrivateKey, profile string) string {
				csr, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{}, k)
				if err != nil {
					t.Fatal(err)
				}
				got, err := pki.Authority.Issue(officer, ca.Request{Profile: profile, CSR: csr, RequestedBy: "officer-7",
					Subject: map[string]string{"givenName": "Aisha", "surname": "Al Harthy", "commonName": "Aisha Al Harthy", "civilNumber": "12345678", "country": "OM"}})
				if err != nil {
					t.Fatal(err)
				}
				return got.Serial
			}
			one := func(action, object string) audit.Record {
				t.Helper()
				var found []audit.Record
				for _, r := range auditOf(t, db, action, object) {
					if r.Outcome == audit.OutcomeSuccess {
						found = append(found, r)
					}
				}
				if len(found) != 1 {
					t.Fatalf("%d success records of %s %s", len(found), action, object)
				}
				return found[0]
			}
			wantRoles := func(rec audit.Record, role policies.Role) {
				t.Helper()
				if roles, ok := callerRoles(t, rec); !ok || !slices.Equal(roles, []string{string(role)}) {
					t.Errorf("%s %s names caller roles %v (%v), want %s: %s", rec.Action, rec.Object, roles, ok, role, rec.Details)
				}
			}
			revoke := string(policies.ActionRevokeCertificate)

			k1, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
			s1 := issue(k1, policies.ProfileCitizenSigning)
			wantRoles(one(string(policies.ActionIssueCertificate), s1), policies.RoleRegistrationOfficer)
			if _, err := svc.Revoke(operator, "op-1", s1, "cessationOfOperation", nil); err != nil {
				t.Fatal(err)
			}
			wantRoles(one(revoke, s1), policies.RoleOperator)

			k2, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
			origin, sibling := issue(k2, policies.ProfileCitizenSigning), issue(k2, policies.ProfileCitizenAuth)
			if _, err := svc.Revoke(officer, "officer-7", origin, "keyCompromise", nil); err != nil {
				t.Fatal(err)
			}
			wantRoles(one(revoke, origin), policies.RoleRegistrationOfficer)
			wantRoles(one(revoke, sibling), policies.RoleRegistrationOfficer)

			k3, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
			s3 := issue(k3, policies.ProfileCitizenSigning)
			if err := svc.RevokeSuperseded(officer, "thiqa-serve", s3); err != nil {
				t.Fatal(err)
			}
			if roles, ok := callerRoles(t, one(revoke, s3)); ok {
				t.Errorf("the service's revocation names a caller with roles %v", roles)
			}
		})
	}
}
