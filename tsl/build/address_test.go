package build

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"math/big"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/beevik/etree"

	"github.com/thiqa/thiqa/policies"
	"github.com/thiqa/thiqa/verify/tsl"
)

// buildWith builds and signs the list of a one-CA deployment in Oman with
// the section c, as `thiqa tsl build` does, and parses it back.
func buildWith(t *testing.T, c Config) *etree.Document {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now().UTC().Truncate(time.Second)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "Citizen CA", Country: []string{"OM"}},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(time.Hour), IsCA: true, BasicConstraintsValid: true}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, k.Public(), k)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	profiles, err := policies.DefaultProfiles(policies.DefaultsConfig{})
	if err != nil {
		t.Fatal(err)
	}
	d := Deployment{Root: cert, Profiles: profiles, Issuers: []IssuingCA{{Name: "citizen", Generations: []*x509.Certificate{cert}}}}
	o := c.WithDefaults("thiqa").ListOptions(d, "https://thiqa.example/", now, time.Hour)
	o.Sequence, o.Signer, o.Certificate = 1, k, cert
	raw, err := Build(o)
	if err != nil {
		t.Fatal(err)
	}
	if r := tsl.Check(raw, tsl.CheckOptions{Signers: []*x509.Certificate{cert}, At: now}); !r.Passed() {
		t.Fatalf("the list does not verify: %s %v", r.Indication, r.Errors)
	}
	doc := etree.NewDocument()
	if err := doc.ReadFromBytes(raw); err != nil {
		t.Fatal(err)
	}
	return doc
}

// addresses returns, for the scheme operator and the provider, the postal
// address's elements as "Tag=text" and the electronic address's URIs.
func addresses(t *testing.T, doc *etree.Document) [][2][]string {
	t.Helper()
	var out [][2][]string
	for _, path := range []string{"/TrustServiceStatusList/SchemeInformation/SchemeOperatorAddress",
		"/TrustServiceStatusList/TrustServiceProviderList/TrustServiceProvider/TSPInformation/TSPAddress"} {
		a := doc.FindElement(path)
		if a == nil {
			t.Fatalf("no %s", path)
		}
		var postal, electronic []string
		for _, e := range a.FindElements("PostalAddresses/PostalAddress/*") {
			postal = append(postal, e.Tag+"="+e.Text())
		}
		for _, e := range a.FindElements("ElectronicAddress/URI") {
			electronic = append(electronic, e.Text())
		}
		out = append(out, [2][]string{postal, electronic})
	}
	return out
}

// TestListAddress: the list carries the section's address for the scheme
// operator and the provider, in the order TS 119 612's schema wants
// (StateOrProvince and PostalCode before CountryName), the e-mail address
// as a mailto: URI; without one it says PLACEHOLDER as it always did.
func TestListAddress(t *testing.T) {
	for _, tc := range []struct {
		name             string
		address          Address
		postal, electron []string
	}{
		{"default", Address{},
			[]string{"StreetAddress=PLACEHOLDER", "Locality=PLACEHOLDER", "CountryName=OM"}, []string{"https://thiqa.example/"}},
		{"configured", Address{Street: "Way 3013, Building 120", Locality: "Muscat", StateOrProvince: "Muscat Governorate", PostalCode: "112", Country: "AE", Email: "trust@ita.gov.example"},
			[]string{"StreetAddress=Way 3013, Building 120", "Locality=Muscat", "StateOrProvince=Muscat Governorate", "PostalCode=112", "CountryName=AE"},
			[]string{"https://thiqa.example/", "mailto:trust@ita.gov.example"}},
		{"street and locality only", Address{Street: "شارع الثقة", Locality: "مسقط"},
			[]string{"StreetAddress=شارع الثقة", "Locality=مسقط", "CountryName=OM"}, []string{"https://thiqa.example/"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := addresses(t, buildWith(t, Config{Operator: "Trust Services", Address: tc.address}))
			for i, who := range []string{"scheme operator", "provider"} {
				if !slices.Equal(got[i][0], tc.postal) || !slices.Equal(got[i][1], tc.electron) {
					t.Errorf("%s's address\n got %q %q\nwant %q %q", who, got[i][0], got[i][1], tc.postal, tc.electron)
				}
			}
		})
	}
}

// TestAddressValidate: the address's values are bounded, without control
// characters, the country a code and the e-mail a bare address; each
// refusal names its key.
func TestAddressValidate(t *testing.T) {
	good := Address{Street: "Way 3013", Locality: "Muscat", StateOrProvince: "Muscat", PostalCode: "112", Country: "OM", Email: "trust@gov.example"}
	if err := (Config{Address: good}).Validate(); err != nil {
		t.Fatal(err)
	}
	if (Config{Address: good}).Address.IsPlaceholder() || !(Address{}).IsPlaceholder() || !(Address{Street: "x", Locality: "PLACEHOLDER"}).IsPlaceholder() {
		t.Fatal("IsPlaceholder")
	}
	for _, tc := range []struct {
		name string
		mod  func(*Address)
		want string
	}{
		{"blank street", func(a *Address) { a.Street = "  " }, "tsl.address.street: blank"},
		{"long locality", func(a *Address) { a.Locality = strings.Repeat("م", 257) }, "tsl.address.locality: longer than 256"},
		{"newline in the state", func(a *Address) { a.StateOrProvince = "Muscat\nGovernorate" }, "tsl.address.stateOrProvince: holds a control character"},
		{"NUL in the street", func(a *Address) { a.Street = "Way\x003013" }, "tsl.address.street: holds a control character"},
		{"long postal code", func(a *Address) { a.PostalCode = strings.Repeat("1", 33) }, "tsl.address.postalCode: longer than 32"},
		{"country name", func(a *Address) { a.Country = "Oman" }, "tsl.address.country: want two capital letters"},
		{"country lower case", func(a *Address) { a.Country = "om" }, "tsl.address.country"},
		{"e-mail with a name", func(a *Address) { a.Email = "Trust <trust@gov.example>" }, "tsl.address.email: want a bare e-mail address"},
		{"mailto URI", func(a *Address) { a.Email = "mailto:trust@gov.example" }, "tsl.address.email"},
		{"no e-mail", func(a *Address) { a.Email = "trust" }, "tsl.address.email"},
		{"long e-mail", func(a *Address) { a.Email = strings.Repeat("a", 250) + "@gov.example" }, "tsl.address.email: longer than 254"},
	} {
		a := good
		tc.mod(&a)
		if err := (Config{Address: a}).Validate(); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want an error naming %q", tc.name, err, tc.want)
		}
	}
}
