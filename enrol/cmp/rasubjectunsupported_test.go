package cmp

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"math/big"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/thiqa/thiqa/store/storetest"
)

// subjectAltName is a subjectAltName extension of GeneralNames, each
// [tag] IMPLICIT value (1 rfc822Name, 2 dNSName).
func subjectAltName(t *testing.T, names ...asn1.RawValue) pkix.Extension {
	t.Helper()
	v, err := asn1.Marshal(names)
	if err != nil {
		t.Fatal(err)
	}
	return pkix.Extension{Id: oidSubjectAltName, Value: v}
}

// sanName is one GeneralName of a subjectAltName: rfc822Name (1),
// dNSName (2) …
func sanName(tag int, value string) asn1.RawValue {
	return asn1.RawValue{Class: asn1.ClassContextSpecific, Tag: tag, Bytes: []byte(value)}
}

// withNames is the citizen subject an RA names with more attributes.
func withNames(extra ...pkix.AttributeTypeAndValue) pkix.Name {
	n := raSubjectName("IDCOM-12345678")
	n.ExtraNames = append(n.ExtraNames, extra...)
	return n
}

// An RA's request naming what the certificate would not carry is refused
// badCertTemplate with a statusString naming it, in an ir's certTemplate
// as in a p10cr's CSR, nothing issued and the CA's refusal audited: an OU,
// an unknown attribute, emailAddress in the DN, a serialNumber that is not
// a string (it used to say "civilNumber: missing"), a dNSName in the
// subjectAltName, a keyUsage other than the profile's, two email addresses. All of them
// used to be dropped without a word (the template's extensions unread).
func TestCMPRASubjectUnsupportedRefused(t *testing.T) {
	for _, d := range storetest.Dialects() {
		t.Run(d.Name, func(t *testing.T) {
			f, ra := newRAFixture(t, d)
			k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
			octets := raSubjectName("")
			octets.ExtraNames[2].Value = []byte("IDCOM-12345678")
			keyUsage := pkix.Extension{Id: asn1.ObjectIdentifier{2, 5, 29, 15}, Critical: true, Value: []byte{0x03, 0x02, 0x06, 0x40}}
			refusals := 0
			for _, c := range []struct {
				name    string
				subject pkix.Name
				exts    []pkix.Extension
				csr     x509.CertificateRequest
				says    string
			}{
				{name: "OU", subject: withNames(pkix.AttributeTypeAndValue{Type: asn1.ObjectIdentifier{2, 5, 4, 11}, Value: "Finance"}),
					says: `subject field "OU": the request's subject names OU (2.5.4.11), which the certificate would not carry: ` +
						"the CA's profiles put only C, serialNumber, organizationIdentifier, O, givenName, surname and CN"},
				{name: "unknown OID", subject: withNames(pkix.AttributeTypeAndValue{Type: asn1.ObjectIdentifier{1, 2, 3, 4}, Value: "x"}),
					says: "the request's subject names 1.2.3.4, which the certificate would not carry"},
				{name: "emailAddress in the DN", subject: withNames(pkix.AttributeTypeAndValue{Type: asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 9, 1}, Value: "aisha@example.om"}),
					says: "names emailAddress (1.2.840.113549.1.9.1)"},
				{name: "serialNumber OCTET STRING", subject: octets,
					says: `subject field "civilNumber": the request's serialNumber attribute is not a string the CA can read: give it as a PrintableString or UTF8String`},
				{name: "dNSName", subject: raSubjectName("IDCOM-12345678"), exts: []pkix.Extension{subjectAltName(t, sanName(2, "aisha.example.om"))},
					csr: x509.CertificateRequest{DNSNames: []string{"aisha.example.om"}}, says: "subjectAltName has a name of type dNSName"},
				{name: "keyUsage", subject: raSubjectName("IDCOM-12345678"), exts: []pkix.Extension{keyUsage},
					csr: x509.CertificateRequest{ExtraExtensions: []pkix.Extension{keyUsage}}, says: "the request's keyUsage extension is not the one profile citizen-auth puts in the certificate (bits 000000010, the profile's 000000001)"},
				{name: "two emails", subject: raSubjectName("IDCOM-12345678"),
					exts: []pkix.Extension{subjectAltName(t, sanName(1, "aisha@example.om"), sanName(1, "aisha@example.ae"))},
					csr:  x509.CertificateRequest{EmailAddresses: []string{"aisha@example.om", "aisha@example.ae"}}, says: "more than one email address"},
			} {
				c.csr.Subject = c.subject
				refusals += raRefused(t, f, ra, c.name, certReqBodyTemplate(t, k, c.subject, c.exts), &c.csr, k, c.says)
			}
			if n := f.count(t, "certificate.issue", "success"); n != 0 {
				t.Fatalf("%d certificates issued", n)
			}
			if n := f.count(t, "certificate.issue", "refused"); n != refusals {
				t.Fatalf("%d certificate.issue refusals audited, want %d", n, refusals)
			}
		})
	}
}

// An RA's ir whose certTemplate carries a subjectAltName with an email
// address (rfc822Name) is certified with it, as a p10cr's CSR is: it used
// to be dropped, the template's extensions unread. The RA certificate's
// own email in the template (openssl cmp's default) is refused, in any case.
func TestCMPRATemplateEmailCertified(t *testing.T) {
	for _, d := range storetest.Dialects() {
		t.Run(d.Name, func(t *testing.T) {
			f, ra := newRAFixture(t, d)
			k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
			body := certReqBodyTemplate(t, k, raSubjectName("IDCOM-12345678"), []pkix.Extension{subjectAltName(t, sanName(1, "aisha@example.om"))})
			a := parseAnswer(t, f.srv.Handle(t.Context(), ra.message(t, bodyIR, body), "citizen-auth"))
			if a.m.bodyType != bodyIP || a.cert == nil {
				t.Fatalf("RA ir with a subjectAltName email: %s %s", bodyName(a.m.bodyType), a.failInfo)
			}
			if !slices.Equal(a.cert.EmailAddresses, []string{"aisha@example.om"}) {
				t.Fatalf("certificate's email addresses %v, want [aisha@example.om]", a.cert.EmailAddresses)
			}

			// openssl cmp without -sans or -san_nodefault copies its -cert's
			// subjectAltName: the RA's own email is refused, not certified as
			// the citizen's.
			tmpl := &x509.Certificate{SerialNumber: big.NewInt(7), Subject: pkix.Name{CommonName: "RA 2"}, EmailAddresses: []string{"ra@example.om"},
				NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), KeyUsage: x509.KeyUsageDigitalSignature, SubjectKeyId: []byte{5, 6, 7, 8}}
			der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, ra.key.Public(), ra.key)
			if err != nil {
				t.Fatal(err)
			}
			raCert2, _ := x509.ParseCertificate(der)
			ra2 := &client{key: ra.key, cert: raCert2}
			k2, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
			body = certReqBodyTemplate(t, k2, raSubjectName("IDCOM-12345678"), []pkix.Extension{subjectAltName(t, sanName(1, "ra@example.om"))})
			a = parseAnswer(t, f.srv.Handle(t.Context(), ra2.message(t, bodyIR, body), "citizen-auth"))
			if a.m.bodyType != bodyError || a.failInfo != "badCertTemplate" ||
				!strings.Contains(statusText(t, a), "email ra@example.om is the one of the RA certificate that signed the request") {
				t.Fatalf("RA ir with the RA's own email: %s %s, want badCertTemplate naming the email", bodyName(a.m.bodyType), a.failInfo)
			}
			// In another case too: a mail system reads Ra@EXAMPLE.om as the
			// RA's address.
			k3, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
			body = certReqBodyTemplate(t, k3, raSubjectName("IDCOM-12345678"), []pkix.Extension{subjectAltName(t, sanName(1, "Ra@EXAMPLE.om"))})
			ra2.tx = nil
			a = parseAnswer(t, f.srv.Handle(t.Context(), ra2.message(t, bodyIR, body), "citizen-auth"))
			if a.m.bodyType != bodyError || a.failInfo != "badCertTemplate" ||
				!strings.Contains(statusText(t, a), "email Ra@EXAMPLE.om is the one of the RA certificate that signed the request") {
				t.Fatalf("RA ir with the RA's own email in capitals: %s %s, want badCertTemplate naming the email", bodyName(a.m.bodyType), a.failInfo)
			}
			if n := f.count(t, "certificate.issue", "refused"); n != 2 {
				t.Fatalf("%d certificate.issue refusals audited, want 2", n)
			}
		})
	}
}
