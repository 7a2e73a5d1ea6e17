package policies

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/asn1"
	"errors"
	"math/big"
	"slices"
	"strings"
	"testing"
	"time"

	"gopkg.in/yaml.v3"
)

func TestDefaultProfilesValidate(t *testing.T) {
	s, err := DefaultProfiles(DefaultsConfig{})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{ProfileCitizenAuth, ProfileCitizenSigning, ProfileOCSPResponder, ProfileOrganisationSeal, ProfileTSAUnit}
	if got := strings.Join(s.Names(), ","); got != strings.Join(want, ",") {
		t.Fatalf("names = %s", got)
	}
	p, _ := s.Get(ProfileCitizenSigning)
	if !p.QC.Compliance || !p.QC.SSCD || p.QC.Types[0].String() != OIDQcTypeESign || p.Policies[0].String() != OIDPolicyQCPnQSCD ||
		p.Policies[1].String() != PlaceholderCAPolicyOID || p.QC.Semantics.String() != OIDSemanticsNatural {
		t.Fatalf("citizen-signing profile = %+v", p)
	}
	if _, err := s.Get("nope"); !errors.Is(err, ErrUnknownProfile) {
		t.Fatalf("Get(nope) = %v", err)
	}
}

func TestProfileConfigYAMLRoundTrip(t *testing.T) {
	cfgs := DefaultProfileConfigs(DefaultsConfig{CAPolicyOID: "1.3.6.1.4.1.99999.1", PDSURL: "https://pki.gov.om/pds/ar.pdf", PDSLanguage: "ar"})
	b, err := yaml.Marshal(cfgs)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(b), "extKeyUsageCritical: true") || !strings.Contains(string(b), "civilNumberMinLength: 6") {
		t.Fatalf("yaml keys not camelCase:\n%s", b)
	}
	var back []ProfileConfig
	dec := yaml.NewDecoder(strings.NewReader(string(b)))
	dec.KnownFields(true)
	if err := dec.Decode(&back); err != nil {
		t.Fatal(err)
	}
	if _, err := NewProfileSet(back); err != nil {
		t.Fatal(err)
	}
}

func TestProfileConfigRejects(t *testing.T) {
	base := func() ProfileConfig { return DefaultProfileConfigs(DefaultsConfig{})[0] }
	cases := map[string]func(*ProfileConfig){
		"unknown key usage": func(c *ProfileConfig) { c.KeyUsages = []string{"keyCertSign"} },
		"bad policy":        func(c *ProfileConfig) { c.Policies = []string{"1"} },
		"http pds":          func(c *ProfileConfig) { c.QCStatements.PDS[0].URL = "http://x.example/pds" },
		"upper lang":        func(c *ProfileConfig) { c.QCStatements.PDS[0].Language = "EN" },
		"two qc types":      func(c *ProfileConfig) { c.QCStatements.Types = []string{"esign", "eseal"} },
		"no compliance":     func(c *ProfileConfig) { c.QCStatements.Compliance = false },
		"validity":          func(c *ProfileConfig) { c.Validity = "forever" },
		"too long":          func(c *ProfileConfig) { c.Validity = "5000d" },
		"key type":          func(c *ProfileConfig) { c.KeyTypes = []string{"rsa-1024"} },
		"unknown field":     func(c *ProfileConfig) { c.Subject.Optional = []string{"nickname"} },
		"civil missing":     func(c *ProfileConfig) { c.Subject.Required = []string{FieldCommonName, FieldCountry} },
		"no issuers":        func(c *ProfileConfig) { c.Issuers = nil },
		"nocheck":           func(c *ProfileConfig) { c.OCSPNoCheck = true },
		"eku twice":         func(c *ProfileConfig) { c.ExtKeyUsages = []string{"clientAuth", "emailProtection", "clientAuth"} },
		"eku name and oid":  func(c *ProfileConfig) { c.ExtKeyUsages = []string{"timeStamping", "1.3.6.1.5.5.7.3.8"} },
		"eku oid twice":     func(c *ProfileConfig) { c.ExtKeyUsages = []string{"1.2.3.4", "1.2.3.4"} },
	}
	for name, mut := range cases {
		c := base()
		c.QCStatements.PDS = append([]PDSLocation(nil), c.QCStatements.PDS...)
		mut(&c)
		if _, err := c.Validate(); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

func TestParseOID(t *testing.T) {
	for _, bad := range []string{"", "1", "1..2", "3.1", "1.40", "1.02", "1.-2", "1.2.99999999999"} {
		if _, err := ParseOID(bad); err == nil {
			t.Errorf("ParseOID(%q) accepted", bad)
		}
	}
	if o, err := ParseOID("2.999.1.1"); err != nil || o.String() != "2.999.1.1" {
		t.Fatal(o, err)
	}
}

func FuzzParseOID(f *testing.F) {
	f.Add("0.4.0.194112.1.2")
	f.Add("2.999")
	f.Fuzz(func(t *testing.T, s string) {
		o, err := ParseOID(s)
		if err == nil && o.String() != s {
			t.Fatalf("ParseOID(%q) = %s", s, o)
		}
	})
}

// TestWithoutKeyDevice: for a key from a CSR the default profiles drop
// QcSSCD and trade each device policy for its plain counterpart, keeping
// every other statement and policy in order; profiles that claim no device
// come back unchanged.
func TestWithoutKeyDevice(t *testing.T) {
	set, err := DefaultProfiles(DefaultsConfig{})
	if err != nil {
		t.Fatal(err)
	}
	for name, want := range map[string][]string{
		ProfileCitizenSigning:   {OIDPolicyQCPn, PlaceholderCAPolicyOID},
		ProfileOrganisationSeal: {OIDPolicyQCPl, PlaceholderCAPolicyOID},
		ProfileCitizenAuth:      {OIDPolicyNCP, PlaceholderCAPolicyOID},
	} {
		p, _ := set.Get(name)
		if !p.ClaimsKeyDevice() {
			t.Fatalf("%s claims no key device", name)
		}
		q := p.WithoutKeyDevice()
		var got []string
		for _, o := range q.Policies {
			got = append(got, o.String())
		}
		if !slices.Equal(got, want) || q.QC.SSCD || q.ClaimsKeyDevice() {
			t.Errorf("%s without the device: policies %v, QcSSCD %v", name, got, q.QC.SSCD)
		}
		if q.QC.Compliance != p.QC.Compliance || len(q.QC.Types) != len(p.QC.Types) || !q.QC.Semantics.Equal(p.QC.Semantics) {
			t.Errorf("%s: other QC statements changed: %+v", name, q.QC)
		}
		if p.Policies[0].String() == want[0] || (name != ProfileCitizenAuth && !p.QC.SSCD) {
			t.Errorf("%s: the profile itself was changed", name)
		}
	}
	tsa, _ := set.Get(ProfileTSAUnit)
	if tsa.ClaimsKeyDevice() || tsa.WithoutKeyDevice() != tsa {
		t.Error("tsa-unit claims a key device")
	}
	// A counterpart already listed is not repeated.
	c := ProfileConfig{Name: "x", Issuers: []string{"citizen"}, KeyUsages: []string{"digitalSignature"}, Validity: "1d",
		KeyTypes: []string{"ecdsa-p256"}, Policies: []string{OIDPolicyNCPPlus, OIDPolicyNCP},
		Subject: SubjectConfig{Required: []string{FieldCommonName, FieldCountry}}}
	p, err := c.Validate()
	if err != nil {
		t.Fatal(err)
	}
	if q := p.WithoutKeyDevice(); len(q.Policies) != 1 || q.Policies[0].String() != OIDPolicyNCP {
		t.Fatalf("policies %v", q.Policies)
	}
}

func TestCryptoPeriods(t *testing.T) {
	set, err := DefaultProfiles(DefaultsConfig{CryptoPeriods: map[string]string{ProfileCitizenSigning: "1460d"}})
	if err != nil {
		t.Fatal(err)
	}
	p, _ := set.Get(ProfileCitizenSigning)
	q, _ := set.Get(ProfileCitizenAuth)
	if p.CryptoPeriod != 1460*24*time.Hour || q.CryptoPeriod != 0 {
		t.Fatalf("crypto-periods %s %s", p.CryptoPeriod, q.CryptoPeriod)
	}
	for _, bad := range []map[string]string{
		{"no-such-profile": "1460d"},
		{ProfileCitizenSigning: "365d"}, // shorter than the validity
		{ProfileCitizenSigning: "soon"},
	} {
		if _, err := DefaultProfiles(DefaultsConfig{CryptoPeriods: bad}); err == nil {
			t.Errorf("%v accepted", bad)
		}
	}
}

// TestParseValidityRefusesOverflow: a day count whose duration does not fit
// in a time.Duration is refused, not wrapped to a negative or a short one
// (GET /api/v1/certificates?expiringWithin=200000d answered an empty list
// until a date in the past).
func TestParseValidityRefusesOverflow(t *testing.T) {
	for _, s := range []string{"106752d", "200000d", "9223372036854775807d"} {
		if d, err := ParseValidity(s); err == nil {
			t.Errorf("ParseValidity(%q) = %s, want an error", s, d)
		}
	}
	if d, err := ParseValidity("106751d"); err != nil || d != 106751*24*time.Hour {
		t.Errorf("ParseValidity(106751d) = %s, %v", d, err)
	}
}

// TestExtKeyUsageOIDs: every purpose a profile may name has its OID, the
// one crypto/x509 writes for it, so that one named twice is found.
func TestExtKeyUsageOIDs(t *testing.T) {
	for name, eku := range extKeyUsageNames {
		want, ok := extKeyUsageOIDs[eku]
		if !ok {
			t.Fatalf("%s: no OID", name)
		}
		key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), ExtKeyUsage: []x509.ExtKeyUsage{eku}}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
		if err != nil {
			t.Fatal(err)
		}
		c, err := x509.ParseCertificate(der)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range c.Extensions {
			if !e.Id.Equal(asn1.ObjectIdentifier{2, 5, 29, 37}) {
				continue
			}
			var got []asn1.ObjectIdentifier
			if _, err := asn1.Unmarshal(e.Value, &got); err != nil || len(got) != 1 || !got[0].Equal(want) {
				t.Fatalf("%s: crypto/x509 writes %v, the table says %s", name, got, want)
			}
		}
	}
	// A profile naming distinct purposes, by name and by OID, is taken.
	c := DefaultProfileConfigs(DefaultsConfig{})[0]
	c.ExtKeyUsages = []string{"clientAuth", "1.3.6.1.5.5.7.3.4", "1.2.3.4"}
	if _, err := c.Validate(); err != nil {
		t.Fatal(err)
	}
}
