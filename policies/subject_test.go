package policies

import (
	"errors"
	"strings"
	"testing"
)

func citizen() map[string]string {
	return map[string]string{
		"givenName": "Aisha", "surname": "Al Balushi", "commonName": "Aisha Al Balushi",
		"civilNumber": "12345678", "country": "OM", "email": "aisha@example.om",
	}
}

func TestValidateSubjectCitizen(t *testing.T) {
	s, _ := DefaultProfiles(DefaultsConfig{})
	p, _ := s.Get(ProfileCitizenSigning)
	sub, err := p.ValidateSubject(citizen())
	if err != nil {
		t.Fatal(err)
	}
	if sub.SerialNumber() != "IDCOM-12345678" {
		t.Fatalf("serialNumber = %q", sub.SerialNumber())
	}
	arabic := citizen()
	arabic["commonName"] = "عائشة البلوشي"
	if _, err := p.ValidateSubject(arabic); err != nil {
		t.Fatalf("Arabic name refused: %v", err)
	}
	n := sub.Name().String()
	for _, want := range []string{"SERIALNUMBER=IDCOM-12345678", "CN=Aisha Al Balushi", "C=OM", "2.5.4.42=", "2.5.4.4="} {
		if !strings.Contains(n, want) {
			t.Errorf("name %s lacks %s", n, want)
		}
	}
}

func TestValidateSubjectRejects(t *testing.T) {
	s, _ := DefaultProfiles(DefaultsConfig{})
	p, _ := s.Get(ProfileCitizenSigning)
	org, _ := s.Get(ProfileOrganisationSeal)
	cases := []struct {
		name, field string
		p           *Profile
		mut         func(m map[string]string)
	}{
		{"missing surname", "surname", p, func(m map[string]string) { delete(m, "surname") }},
		{"empty given", "givenName", p, func(m map[string]string) { m["givenName"] = "" }},
		{"extra", "organizationName", p, func(m map[string]string) { m["organizationName"] = "X" }},
		{"civil letters", "civilNumber", p, func(m map[string]string) { m["civilNumber"] = "12A45678" }},
		{"civil short", "civilNumber", p, func(m map[string]string) { m["civilNumber"] = "12345" }},
		{"civil long", "civilNumber", p, func(m map[string]string) { m["civilNumber"] = "1234567890123" }},
		{"country lower", "country", p, func(m map[string]string) { m["country"] = "om" }},
		{"country unknown", "country", p, func(m map[string]string) { m["country"] = "XX" }},
		{"cn too long", "commonName", p, func(m map[string]string) { m["commonName"] = strings.Repeat("a", 65) }},
		{"control char", "commonName", p, func(m map[string]string) { m["commonName"] = "A\x00B" }},
		{"bad utf8", "surname", p, func(m map[string]string) { m["surname"] = "\xff" }},
		{"email display", "email", p, func(m map[string]string) { m["email"] = "A <a@b.om>" }},
		{"email no domain", "email", p, func(m map[string]string) { m["email"] = "a@localhost" }},
		{"org missing id", "organizationIdentifier", org, nil},
	}
	for _, c := range cases {
		m := citizen()
		if c.p == org {
			m = map[string]string{"organizationName": "Ministry", "commonName": "Ministry seal", "country": "OM"}
		}
		if c.mut != nil {
			c.mut(m)
		}
		_, err := c.p.ValidateSubject(m)
		var se *SubjectError
		if !errors.As(err, &se) || se.Field != c.field {
			t.Errorf("%s: err = %v, want SubjectError on %s", c.name, err, c.field)
		}
	}
}

// One request with several bad fields hears about all of them at once, in
// a stable order, and errors.As still finds the first.
func TestValidateSubjectReportsEveryProblem(t *testing.T) {
	s, _ := DefaultProfiles(DefaultsConfig{})
	p, _ := s.Get(ProfileCitizenSigning)
	m := citizen()
	m["organizationName"] = "X"
	m["nickname"] = "Ash"
	delete(m, "surname")
	m["givenName"] = ""
	m["civilNumber"] = "12A"
	m["country"] = "om"
	m["email"] = "a@localhost"
	_, err := p.ValidateSubject(m)
	var all SubjectErrors
	if !errors.As(err, &all) {
		t.Fatalf("err = %v (%T), want SubjectErrors", err, err)
	}
	var got []string
	for _, se := range all {
		got = append(got, se.Field)
		if se.Reason == "" || !strings.Contains(err.Error(), se.Reason) {
			t.Errorf("%s: reason %q missing from %q", se.Field, se.Reason, err)
		}
	}
	want := "nickname,organizationName,givenName,surname,civilNumber,country,email"
	if strings.Join(got, ",") != want {
		t.Fatalf("fields %v, want %s", got, want)
	}
	var first *SubjectError
	if !errors.As(err, &first) || first.Field != "nickname" {
		t.Fatalf("errors.As found %v, want the first problem (nickname)", first)
	}
}

func TestOrganisationIdentifier(t *testing.T) {
	s, _ := DefaultProfiles(DefaultsConfig{})
	p, _ := s.Get(ProfileOrganisationSeal)
	for id, ok := range map[string]bool{
		"NTROM-1234567": true, "NTRDE-HRB12345": true, "VATOM-1234": false, "NTRom-1": false, "NTRXX-1": false,
		"NTROM1234567": false, "NTROM-": false, "NTROM-12 34": false, "NTROM--1": false,
	} {
		_, err := p.ValidateSubject(map[string]string{"organizationName": "Ministry of Health", "organizationIdentifier": id, "commonName": "MoH seal", "country": "OM"})
		if (err == nil) != ok {
			t.Errorf("%s: err = %v", id, err)
		}
	}
}

func FuzzValidateSubject(f *testing.F) {
	s, _ := DefaultProfiles(DefaultsConfig{})
	p, _ := s.Get(ProfileCitizenSigning)
	o, _ := s.Get(ProfileOrganisationSeal)
	f.Add("Aisha", "12345678", "OM", "a@b.om", "NTROM-1")
	f.Fuzz(func(t *testing.T, name, civil, country, email, orgID string) {
		m := map[string]string{"givenName": name, "surname": name, "commonName": name, "civilNumber": civil, "country": country, "email": email}
		if sub, err := p.ValidateSubject(m); err == nil {
			if !IsCountryCode(sub.Country) || !isDigits(sub.CivilNumber) || len(sub.CommonName) == 0 {
				t.Fatalf("accepted bad subject %+v", sub)
			}
			_ = sub.Name().ToRDNSequence()
		}
		_, _ = o.ValidateSubject(map[string]string{"organizationName": name, "organizationIdentifier": orgID, "commonName": name, "country": country})
	})
}
