package build

import (
	"crypto/x509"
	"crypto/x509/pkix"
	"slices"
	"testing"
	"time"

	"github.com/thiqa/thiqa/policies"
	"github.com/thiqa/thiqa/verify/tsl"
)

// TestDeploymentServices: each generation of a CA issuing qualified
// certificates is a CA/QC service with the additional information of its
// profiles, each generation of the TSA's CA a TSA/QTST service; a CA that
// issues nothing qualified is left out; the territory is the root's.
func TestDeploymentServices(t *testing.T) {
	profiles, err := policies.DefaultProfiles(policies.DefaultsConfig{})
	if err != nil {
		t.Fatal(err)
	}
	cert := func(cn string) *x509.Certificate {
		return &x509.Certificate{Subject: pkix.Name{CommonName: cn, Country: []string{"OM"}}, NotBefore: time.Unix(1e9, 0)}
	}
	d := Deployment{Root: cert("Root"), Profiles: profiles, TSACA: "tsa", Issuers: []IssuingCA{
		{Name: "citizen", Generations: []*x509.Certificate{cert("Citizen CA"), cert("Citizen CA G2")}},
		{Name: "organisation", Generations: []*x509.Certificate{cert("Organisation CA")}},
		{Name: "tsa", Generations: []*x509.Certificate{cert("TSA CA")}},
		{Name: "other", Generations: []*x509.Certificate{cert("Other CA")}},
	}}
	services, territory := DeploymentServices(d)
	if territory != "OM" {
		t.Errorf("territory %q, want OM", territory)
	}
	var got []string
	for _, s := range services {
		got = append(got, s.Type+" "+s.Name)
		if s.Type == tsl.SvcTypeCAQC && len(s.AdditionalInfo) != 1 {
			t.Errorf("%s: additional information %v, want one URI", s.Name, s.AdditionalInfo)
		}
	}
	want := []string{tsl.SvcTypeCAQC + " Citizen CA", tsl.SvcTypeCAQC + " Citizen CA G2", tsl.SvcTypeCAQC + " Organisation CA", tsl.SvcTypeTSAQTST + " TSA CA time-stamping"}
	if !slices.Equal(got, want) {
		t.Errorf("services\n got %v\nwant %v", got, want)
	}
	if services[0].AdditionalInfo[0] != tsl.ASiForeSignatures || services[2].AdditionalInfo[0] != tsl.ASiForeSeals {
		t.Errorf("additional information %v, %v", services[0].AdditionalInfo, services[2].AdditionalInfo)
	}
	if NextSequence([]byte("not a list")) != 1 {
		t.Error("NextSequence of garbage is not 1")
	}
}
