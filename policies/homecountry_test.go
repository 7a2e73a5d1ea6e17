package policies

import (
	"errors"
	"strings"
	"testing"
)

// countryReason validates subject against profile name of set and returns
// the reason the country was refused, "" when it was accepted.
func countryReason(t *testing.T, set *ProfileSet, name string, subject map[string]string) string {
	t.Helper()
	p, err := set.Get(name)
	if err != nil {
		t.Fatal(err)
	}
	_, err = p.ValidateSubject(subject)
	if err == nil {
		return ""
	}
	var se *SubjectError
	if !errors.As(err, &se) || se.Field != FieldCountry {
		t.Fatalf("%s: %v, want a refusal of the country", name, err)
	}
	return se.Reason
}

// A natural-person profile that lists no countries issues to the
// deployment's country alone (a civil number of AE is no number the OM CA
// vouches for); an explicit list rules; organisations and services, and a
// deployment that does not know its country, are unchanged.
func TestHomeCountry(t *testing.T) {
	set, err := DefaultProfiles(DefaultsConfig{})
	if err != nil {
		t.Fatal(err)
	}
	om := set.WithHomeCountry("OM")
	ae := citizen()
	ae["country"] = "AE"
	for _, name := range []string{ProfileCitizenSigning, ProfileCitizenAuth} {
		reason := countryReason(t, om, name, ae)
		for _, want := range []string{"country AE", "OM only", "ca.profiles.countries", name + ": [OM, AE]"} {
			if !strings.Contains(reason, want) {
				t.Errorf("%s: refusal %q does not say %q", name, reason, want)
			}
		}
		if r := countryReason(t, om, name, citizen()); r != "" {
			t.Errorf("%s: own country refused: %s", name, r)
		}
		// The set without a home country (offline root, no citizen CA
		// country) and the set it was made from issue to AE as before.
		for _, s := range []*ProfileSet{set, set.WithHomeCountry("")} {
			if r := countryReason(t, s, name, ae); r != "" {
				t.Errorf("%s without a home country: AE refused: %s", name, r)
			}
		}
	}
	org := map[string]string{"organizationName": "Emirates Agency", "organizationIdentifier": "NTRAE-1234567",
		"commonName": "Emirates Agency Seal", "country": "AE"}
	if r := countryReason(t, om, ProfileOrganisationSeal, org); r != "" {
		t.Errorf("organisation-seal: AE refused: %s", r)
	}
	svc := map[string]string{"organizationName": "Thiqa", "commonName": "TSA", "country": "AE"}
	if r := countryReason(t, om, ProfileTSAUnit, svc); r != "" {
		t.Errorf("tsa-unit: AE refused: %s", r)
	}

	// ca.profiles.countries: the list rules, whatever the home country.
	listed, err := DefaultProfiles(DefaultsConfig{Countries: map[string][]string{ProfileCitizenAuth: {"OM", "AE"}, ProfileOrganisationSeal: {"OM"}}})
	if err != nil {
		t.Fatal(err)
	}
	listedOM := listed.WithHomeCountry("OM")
	if r := countryReason(t, listedOM, ProfileCitizenAuth, ae); r != "" {
		t.Errorf("citizen-auth listing AE: refused: %s", r)
	}
	sa := citizen()
	sa["country"] = "SA"
	if r := countryReason(t, listedOM, ProfileCitizenAuth, sa); !strings.Contains(r, "OM, AE only") || !strings.Contains(r, "ca.profiles.countries") {
		t.Errorf("citizen-auth listing OM, AE: SA refused with %q", r)
	}
	if r := countryReason(t, listedOM, ProfileCitizenSigning, ae); r == "" {
		t.Error("citizen-signing (not listed) issued to AE")
	}
	if r := countryReason(t, listedOM, ProfileOrganisationSeal, org); r == "" {
		t.Error("organisation-seal listing OM issued to AE")
	}

	for _, bad := range []map[string][]string{
		{"no-such-profile": {"OM"}},
		{ProfileCitizenSigning: {}},
		{ProfileCitizenSigning: {"om"}},
		{ProfileCitizenSigning: {"XX"}},
	} {
		if _, err := DefaultProfiles(DefaultsConfig{Countries: bad}); err == nil {
			t.Errorf("countries %v accepted", bad)
		}
	}
}

// An organisation's C (where it is established, EN 319 412-3) and the
// country of its organizationIdentifier (of the register that gave the
// number, EN 319 412-1 §5.1.4) need not agree: the standard does not
// bind them, and ca.profiles.countries restricts C alone.
func TestOrganisationCountryNotIdentifierCountry(t *testing.T) {
	listed, err := DefaultProfiles(DefaultsConfig{Countries: map[string][]string{ProfileOrganisationSeal: {"OM"}}})
	if err != nil {
		t.Fatal(err)
	}
	org := map[string]string{"organizationName": "Emirates Agency Oman Branch", "organizationIdentifier": "NTRAE-1234567",
		"commonName": "Emirates Agency Seal", "country": "OM"}
	if r := countryReason(t, listed.WithHomeCountry("OM"), ProfileOrganisationSeal, org); r != "" {
		t.Errorf("organisation-seal C=OM, NTRAE-…: refused: %s", r)
	}
	org["country"] = "AE"
	if r := countryReason(t, listed.WithHomeCountry("OM"), ProfileOrganisationSeal, org); r == "" {
		t.Error("organisation-seal listing OM issued to C=AE")
	}
}

// CheckSerialNumber: the serialNumber a request named must be the one its
// C and civil number make; none named, or no civil number, is nothing to
// check.
func TestCheckSerialNumber(t *testing.T) {
	s := Subject{CommonName: "A B", CivilNumber: "12345678", Country: "OM"}
	for named, ok := range map[string]bool{"": true, "IDCOM-12345678": true, "IDCAE-12345678": false, "IDCOM-1": false, "PASOM-12345678": false} {
		err := s.CheckSerialNumber(named)
		var se *SubjectError
		switch {
		case ok && err != nil:
			t.Errorf("%q: %v", named, err)
		case !ok && (!errors.As(err, &se) || se.Field != FieldCountry || !strings.Contains(se.Reason, named)):
			t.Errorf("%q: %v, want a *SubjectError on country naming it", named, err)
		}
	}
	if err := (Subject{CommonName: "Seal", Country: "OM", OrganizationIdentifier: "NTROM-1"}).CheckSerialNumber("DEVICE-1"); err != nil {
		t.Errorf("organisation: %v", err)
	}
}
