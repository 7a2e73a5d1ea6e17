package ca

import (
	"context"
	"crypto"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/thiqa/thiqa/policies"
)

// TestGenerations: after a rollover the second generation of the citizen
// CA issues (its own caIssuers and CRL URLs, its issuer name in the
// store), the first is still found by its name and still certifies its own
// OCSP responders when asked by name.
func TestGenerations(t *testing.T) {
	pki := newTestPKI(t, func(t testing.TB) crypto.Signer { return p384(t) })
	old := pki.issuers[policies.IssuerCitizen]
	key := p384(t)
	csr, err := CreateIssuingCARequest(key, IssuingCAConfig{Name: "citizen", CommonName: "Thiqa Test citizen CA G2", Organization: "Thiqa Test", Country: "OM"})
	if err != nil {
		t.Fatal(err)
	}
	profiles, _ := policies.DefaultProfiles(policies.DefaultsConfig{})
	cert, err := CertifyIssuingCA(pki.root, pki.rootKey, IssuingCARequest{CSR: csr, BaseURL: testBaseURL,
		Policies: IssuingCAPolicies(profiles, "citizen"), Validity: 5 * 365 * 24 * time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	gen2, err := NewIssuer(cert, key, IssuerOptions{Name: "citizen_2", CA: "citizen", Generation: 2, BaseURL: testBaseURL})
	if err != nil {
		t.Fatal(err)
	}
	list := []*Issuer{gen2, old, pki.issuers[policies.IssuerOrganisation], pki.issuers[policies.IssuerTSA]}
	a, err := NewAuthority(AuthorityConfig{Root: pki.root, Issuers: list, Profiles: profiles, Store: pki.store, Auditor: pki.audit})
	if err != nil {
		t.Fatal(err)
	}
	got, err := a.Issue(context.Background(), Request{Profile: policies.ProfileCitizenSigning, Subject: subjectFor(policies.ProfileCitizenSigning),
		CSR: newCSR(t, p384(t)), RequestedBy: "officer"})
	if err != nil {
		t.Fatal(err)
	}
	if got.CA != "citizen_2" || got.Chain[0] != cert || got.Certificate.CheckSignatureFrom(cert) != nil {
		t.Fatalf("issued by %s", got.CA)
	}
	if !slices.Equal(got.Certificate.IssuingCertificateURL, []string{testBaseURL + "/certs/citizen_2.crt"}) ||
		!slices.Equal(got.Certificate.CRLDistributionPoints, []string{testBaseURL + "/crl/citizen_2.crl"}) {
		t.Fatalf("URLs %v %v", got.Certificate.IssuingCertificateURL, got.Certificate.CRLDistributionPoints)
	}
	if rec, _ := pki.store.GetCertificate(context.Background(), got.Serial); rec == nil || rec.CA != "citizen_2" {
		t.Fatalf("stored under %+v", rec)
	}
	if c, ok := a.CACertificate("citizen"); !ok || c != old.Certificate() {
		t.Fatal("CACertificate(citizen) is not the first generation")
	}
	if c, ok := a.CACertificate("citizen_2"); !ok || c != cert {
		t.Fatal("CACertificate(citizen_2) is not the second generation")
	}
	if cur := a.CurrentCACertificates([]string{"tsa", "citizen", "nobody"}); len(cur) != 2 ||
		cur[0] != pki.issuers[policies.IssuerTSA].Certificate() || cur[1] != cert {
		t.Fatalf("CurrentCACertificates: %d certificates, not the TSA CA's and the second generation's", len(cur))
	}
	// The first generation certifies its own OCSP responder when named.
	resp, err := a.Issue(context.Background(), Request{Profile: policies.ProfileOCSPResponder, Issuer: "citizen",
		Subject: subjectFor(policies.ProfileOCSPResponder), PublicKey: p384(t).Public(), KeyGeneratedByService: true, RequestedBy: "thiqa-serve"})
	if err != nil || resp.CA != "citizen" || resp.Certificate.CheckSignatureFrom(old.Certificate()) != nil {
		t.Fatalf("responder from the first generation: %v %+v", err, resp)
	}
	// Generations: the request's CA names the generation.
	resp, err = Generations{a}.Issue(context.Background(), Request{Profile: policies.ProfileOCSPResponder, CA: "citizen",
		Subject: subjectFor(policies.ProfileOCSPResponder), PublicKey: p384(t).Public(), KeyGeneratedByService: true, RequestedBy: "thiqa-serve"})
	if err != nil || resp.CA != "citizen" || resp.Certificate.CheckSignatureFrom(old.Certificate()) != nil {
		t.Fatalf("Generations: responder from the first generation: %v %+v", err, resp)
	}
	// Naming a generation the profile's CA does not have, or none at all, is refused.
	for _, r := range []Request{
		{Profile: policies.ProfileCitizenSigning, Issuer: "organisation"},
		{Profile: policies.ProfileCitizenSigning, Issuer: "citizen_9"},
		{Profile: policies.ProfileOCSPResponder, CA: "tsa", Issuer: "citizen"},
	} {
		r.Subject, r.CSR, r.RequestedBy = subjectFor(r.Profile), newCSR(t, p384(t)), "officer"
		var re *RequestError
		if _, err := a.Issue(context.Background(), r); !errors.As(err, &re) {
			t.Fatalf("%+v: %v", r, err)
		}
	}
	// Two issuers of one generation are a configuration error.
	dup, _ := NewIssuer(cert, key, IssuerOptions{Name: "citizen_x", CA: "citizen", Generation: 2, BaseURL: testBaseURL})
	if _, err := NewAuthority(AuthorityConfig{Root: pki.root, Issuers: append(list, dup), Profiles: profiles, Store: pki.store, Auditor: pki.audit}); err == nil {
		t.Fatal("two issuers of generation 2 accepted")
	}
}
