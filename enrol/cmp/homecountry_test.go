package cmp

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/asn1"
	"strings"
	"testing"

	"github.com/thiqa/thiqa/ca"
	"github.com/thiqa/thiqa/enrol"
	"github.com/thiqa/thiqa/policies"
	"github.com/thiqa/thiqa/store/storetest"
)

// statusText is the statusString of an error message answer.
func statusText(t *testing.T, a answer) string {
	t.Helper()
	var em errorMsgContent
	if _, err := asn1.Unmarshal(a.m.body, &em); err != nil {
		t.Fatal(err)
	}
	var parts []string
	for _, s := range em.Status.StatusString {
		var v string
		if _, err := asn1.UnmarshalWithParams(s.FullBytes, &v, "utf8"); err == nil {
			parts = append(parts, v)
		}
	}
	return strings.Join(parts, " ")
}

// A certificate of another country's citizen (IDCAE-<n>), issued while
// the CA issued to any country, is not renewed by kur once the CA of an
// OM deployment issues to OM only: badCertTemplate whose statusString
// names the country, the one allowed and ca.profiles.countries; nothing
// issued, the refusal audited by the CA, and the current certificate
// stays valid (it is not superseded).
func TestCMPKeyUpdateRefusesOtherCountry(t *testing.T) {
	for _, d := range storetest.Dialects() {
		t.Run(d.Name, func(t *testing.T) {
			f := newFixture(t, d)
			subject := citizen()
			subject["country"] = "AE"
			c, err := f.enrol.Create(t.Context(), "officer-1", "citizen-auth", subject, 0)
			if err != nil {
				t.Fatal(err)
			}
			k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
			ip := parseAnswer(t, f.srv.Handle(t.Context(), (&client{ref: c.Reference, secret: c.Secret, info: implicitConfirm, now: f.now}).
				message(t, bodyIR, certReqBody(t, k, k, nil)), ""))
			if ip.m.bodyType != bodyIP || ip.cert.Subject.SerialNumber != "IDCAE-12345678" {
				t.Fatalf("ir for IDCAE-12345678 before the rule: %s %s", bodyName(ip.m.bodyType), ip.failInfo)
			}

			// Now: the same CA as hierarchy.OpenAuthority builds it for OM.
			profiles, err := policies.DefaultProfiles(policies.DefaultsConfig{})
			if err != nil {
				t.Fatal(err)
			}
			var issuers []*ca.Issuer
			for _, name := range []string{policies.IssuerCitizen, policies.IssuerOrganisation, policies.IssuerTSA} {
				is, err := ca.NewIssuer(f.pki.CAs[name], f.pki.Keys[name], ca.IssuerOptions{Name: name, BaseURL: "http://pki.thiqa.test"})
				if err != nil {
					t.Fatal(err)
				}
				issuers = append(issuers, is)
			}
			home, err := ca.NewAuthority(ca.AuthorityConfig{Root: f.pki.Root, Issuers: issuers, Profiles: profiles.WithHomeCountry("OM"),
				Store: f.db.Certificates(nil), Auditor: f.auditGate})
			if err != nil {
				t.Fatal(err)
			}
			renewer, err := ca.NewRenewer(ca.RenewerConfig{Authority: home, Store: f.db.Certificates(nil), Superseder: superseder{f.revoker}})
			if err != nil {
				t.Fatal(err)
			}
			f.renewer.Renewer = enrol.CARenewer{Renewals: renewer}

			nk, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
			a := parseAnswer(t, f.srv.Handle(t.Context(), (&client{key: k, cert: ip.cert, info: implicitConfirm, now: f.now}).
				message(t, bodyKUR, certReqBody(t, nk, nk, ip.cert.SerialNumber)), ""))
			if a.m.bodyType != bodyError || a.failInfo != "badCertTemplate" {
				t.Fatalf("kur of IDCAE-12345678 after the rule: %s %s, want badCertTemplate", bodyName(a.m.bodyType), a.failInfo)
			}
			text := statusText(t, a)
			for _, want := range []string{"country AE", "OM only", "ca.profiles.countries"} {
				if !strings.Contains(text, want) {
					t.Errorf("kur refusal %q does not say %q", text, want)
				}
			}
			if n := f.count(t, "certificate.issue", "success"); n != 1 {
				t.Fatalf("%d certificates issued, want only the first", n)
			}
			if n := f.count(t, "certificate.issue", "refused"); n != 1 {
				t.Fatalf("%d certificate.issue refusals audited, want 1", n)
			}
			f.wantRevoked(t, "the current certificate after the refused kur", ip.cert, false, 0)
		})
	}
}
