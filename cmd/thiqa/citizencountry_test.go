package main

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"net/http"
	"strings"
	"testing"

	"github.com/thiqa/thiqa/ca"
	"github.com/thiqa/thiqa/internal/problem"
)

// allowCitizensOf lists countries in ca.profiles.countries for the two
// citizen profiles: the tests that need a certificate of another
// country's civil number (IDCAE-<n>) issue it as an operator who really
// issues to that country would.
func allowCitizensOf(countries string) func(y string) string {
	return func(y string) string {
		old := "    pdsLanguage: \"\"\n"
		return strings.Replace(y, old, old+"    countries: {citizen-signing: ["+countries+"], citizen-auth: ["+countries+"]}\n", 1)
	}
}

// allowForeignCitizens is allowCitizensOf for newAZFixture: OM and AE.
func allowForeignCitizens(y, _ string) string { return allowCitizensOf("OM, AE")(y) }

// The national (OM) CA issues a citizen certificate only for a civil
// number of its own country: a request for IDCAE-<n> by the RA API (with
// a CSR or a key on the token) or for an enrolment (EST, CMP) is refused
// with 400 bad-subject naming the country asked, the one allowed and the
// setting that changes it; nothing is stored and the refusal is audited.
// The OM citizen is issued as before.
func TestCitizenCountryOnSQLite(t *testing.T)   { runCitizenCountry(t, false) }
func TestCitizenCountryOnPostgres(t *testing.T) { runCitizenCountry(t, true) }

func runCitizenCountry(t *testing.T, postgres bool) {
	f := newAZFixture(t, postgres)
	officer := azCaller{name: "officer-1", bearer: f.officer}
	foreign := azCitizen(azCitizenA)
	foreign["country"] = "AE"
	k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	der, _ := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{}, k)
	csr := string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: der}))
	tables := []string{"certificates", "signing_credentials", "enrolments"}

	for _, c := range []struct {
		name, path, action string
		body               any
	}{
		{"citizen-auth with a CSR", "/api/v1/certificates", "certificate.issue",
			ca.IssueRequest{Profile: "citizen-auth", Subject: foreign, CSR: csr}},
		{"citizen-signing with a key on the token", "/api/v1/certificates", "certificate.issue",
			ca.IssueRequest{Profile: "citizen-signing", Subject: foreign, KeyInHSM: true}},
		{"citizen-auth enrolment (EST, CMP)", "/api/v1/enrolments", "enrolment.create",
			map[string]any{"profile": "citizen-auth", "subject": foreign}},
	} {
		before, head := f.snapshotOf(t, tables...), f.auditHead(t)
		b, _ := json.Marshal(c.body)
		st, body := f.do(t, officer, http.MethodPost, c.path, "application/json", b, nil)
		var p problem.Details
		if st != http.StatusBadRequest || json.Unmarshal(body, &p) != nil || p.Type != "urn:thiqa:problem:bad-subject" ||
			len(p.InvalidParams) != 1 || p.InvalidParams[0].Name != "country" {
			t.Errorf("%s for IDCAE-%s: %d %s, want 400 bad-subject on country", c.name, azCitizenA, st, body)
			continue
		}
		for _, want := range []string{"country AE", "OM only", "ca.profiles.countries"} {
			if !strings.Contains(p.InvalidParams[0].Reason, want) || !strings.Contains(p.Detail, want) {
				t.Errorf("%s: the refusal %q does not say %q", c.name, p.InvalidParams[0].Reason, want)
			}
		}
		if f.snapshotOf(t, tables...) != before {
			t.Errorf("%s: the refusal changed the store", c.name)
		}
		recs, _ := f.auditSince(t, head)
		if len(recs) != 1 || recs[0].action != c.action || recs[0].outcome != "refused" || recs[0].actor != "officer-1" ||
			!strings.Contains(recs[0].details["error"].(string), "country AE") {
			t.Errorf("%s: audit records %+v, want one %s refusal of officer-1 naming the country", c.name, recs, c.action)
		}
	}

	k2, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	der2, _ := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{}, k2)
	own := f.issue(t, ca.IssueRequest{Profile: "citizen-auth", Subject: azCitizen(azCitizenA),
		CSR: string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: der2}))})
	blk, _ := pem.Decode([]byte(own.Certificate))
	cert, err := x509.ParseCertificate(blk.Bytes)
	if err != nil || cert.Subject.SerialNumber != "IDCOM-"+azCitizenA {
		t.Fatalf("own citizen's certificate: %v %v", err, cert.Subject)
	}
}

// ca.profiles.countries rules: a profile that lists OM and AE issues to
// both (the operator says so), and still to no third country.
func TestCitizenCountryListed(t *testing.T) {
	f := newAZFixture(t, false, allowForeignCitizens)
	foreign := azCitizen(azCitizenA)
	foreign["country"] = "AE"
	out := f.issue(t, ca.IssueRequest{Profile: "citizen-signing", Subject: foreign, KeyInHSM: true})
	blk, _ := pem.Decode([]byte(out.Certificate))
	if cert, err := x509.ParseCertificate(blk.Bytes); err != nil || cert.Subject.SerialNumber != "IDCAE-"+azCitizenA {
		t.Fatalf("listed country AE: %v %v", err, cert.Subject)
	}
	third := azCitizen(azCitizenA)
	third["country"] = "SA"
	b, _ := json.Marshal(ca.IssueRequest{Profile: "citizen-signing", Subject: third, KeyInHSM: true})
	st, body := f.do(t, azCaller{name: "officer-1", bearer: f.officer}, http.MethodPost, "/api/v1/certificates", "application/json", b, nil)
	if st != http.StatusBadRequest || !strings.Contains(string(body), "OM, AE only") {
		t.Fatalf("unlisted country SA: %d %s", st, body)
	}
}
