package main

import (
	"strings"
	"testing"

	"github.com/thiqa/thiqa/ca"
)

// thiqa oidc mobile enrol refuses, as its other refusals (exit 1), the
// certificate of another country's national identity number (IDCAE in
// this OM deployment): as a mobile ID it could never log in here. The CA
// issues it because ca.profiles.countries lists AE.
func TestMobileEnrolRefusesOtherCountry(t *testing.T) {
	f := newIDFixture(t, allowCitizensOf("OM, AE"))
	sub := citizenSubject()
	sub["country"] = "AE"
	mob := f.issue(t, ca.IssueRequest{Profile: "citizen-auth", Subject: sub, KeyInHSM: true})
	r := thiqa(t, nil, "oidc", "mobile", "enrol", "--data", f.dir, "--credential", mob.CredentialID)
	if r.code != 1 || !strings.Contains(r.stderr, "IDCAE-12345678") || !strings.Contains(r.stderr, "another country") || strings.Contains(r.stdout, "enrolled") {
		t.Fatalf("enrolling an IDCAE certificate: exit %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}
}
