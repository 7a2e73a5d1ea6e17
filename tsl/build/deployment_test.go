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

// TestListOptions: the list names the deployment's services, the root's
// territory unless the section names one, the operator as scheme operator
// and provider, and where it is published.
func TestListOptions(t *testing.T) {
	profiles, err := policies.DefaultProfiles(policies.DefaultsConfig{})
	if err != nil {
		t.Fatal(err)
	}
	ca := &x509.Certificate{Subject: pkix.Name{CommonName: "Citizen CA", Country: []string{"OM"}}}
	d := Deployment{Root: ca, Profiles: profiles, Issuers: []IssuingCA{{Name: "citizen", Generations: []*x509.Certificate{ca}}}}
	issued := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	c := Config{Operator: "Thiqa"}
	o := c.ListOptions(d, "https://thiqa.example/", issued, 24*time.Hour)
	if o.Territory != "OM" || o.Operator != "Thiqa" || o.Provider != "Thiqa" || len(o.Services) != 1 ||
		o.DistributionPoint != "https://thiqa.example/tsl.xml" || o.InformationURI != "https://thiqa.example/" ||
		!o.IssueDate.Equal(issued) || !o.NextUpdate.Equal(issued.Add(24*time.Hour)) {
		t.Fatalf("ListOptions: %+v", o)
	}
	c.Territory = "AE"
	if o := c.ListOptions(d, "https://thiqa.example", issued, time.Hour); o.Territory != "AE" || o.DistributionPoint != "https://thiqa.example/tsl.xml" {
		t.Fatalf("territory of the section: %+v", o)
	}
}
