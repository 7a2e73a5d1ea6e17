package cmp

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha1"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"strings"
	"testing"

	"github.com/thiqa/thiqa/store/storetest"
)

// An RA's ir, cr or p10cr asking for the keyUsage, extKeyUsage,
// basicConstraints CA:FALSE and key identifier (RFC 5280's SHA-1 of the
// key, as Windows certreq and keytool put in a CSR) that the certificate
// of profile citizen-auth carries anyway is certified: they used to be
// refused like any other extension. One asking for a keyUsage, an
// extKeyUsage, a CA, a path length (-1 too) or a key identifier other than
// the certificate's, or a basicConstraints with more than cA FALSE, is
// refused badCertTemplate naming the difference, and audited.
func TestCMPRAProfileExtensionsAccepted(t *testing.T) {
	for _, d := range storetest.Dialects() {
		t.Run(d.Name, func(t *testing.T) {
			f, ra := newRAFixture(t, d)
			ctx := t.Context()
			ext := func(oid asn1.ObjectIdentifier, critical bool, v any) pkix.Extension {
				der, err := asn1.Marshal(v)
				if err != nil {
					t.Fatal(err)
				}
				return pkix.Extension{Id: oid, Critical: critical, Value: der}
			}
			keyUsage := func(bits byte, unused int) pkix.Extension {
				return ext(asn1.ObjectIdentifier{2, 5, 29, 15}, true, asn1.BitString{Bytes: []byte{bits}, BitLength: 8 - unused})
			}
			eku := func(oids ...asn1.ObjectIdentifier) pkix.Extension {
				return ext(asn1.ObjectIdentifier{2, 5, 29, 37}, false, oids)
			}
			clientAuth, serverAuth := asn1.ObjectIdentifier{1, 3, 6, 1, 5, 5, 7, 3, 2}, asn1.ObjectIdentifier{1, 3, 6, 1, 5, 5, 7, 3, 1}
			notCA := pkix.Extension{Id: asn1.ObjectIdentifier{2, 5, 29, 19}, Value: []byte{0x30, 0x00}}
			isCA := pkix.Extension{Id: asn1.ObjectIdentifier{2, 5, 29, 19}, Critical: true, Value: []byte{0x30, 0x03, 0x01, 0x01, 0xff}}
			ski := func(k *ecdsa.PrivateKey) pkix.Extension {
				pub, _ := k.PublicKey.Bytes()
				h := sha1.Sum(pub)
				return ext(asn1.ObjectIdentifier{2, 5, 29, 14}, false, h[:])
			}
			other, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
			refusals := 0
			for _, c := range []struct {
				name string
				exts func(k *ecdsa.PrivateKey) []pkix.Extension
				says string // "" when certified
			}{
				{name: "the profile's", exts: func(k *ecdsa.PrivateKey) []pkix.Extension {
					return []pkix.Extension{keyUsage(0x80, 7), eku(clientAuth), notCA, ski(k)}
				}},
				{name: "other keyUsage", exts: func(*ecdsa.PrivateKey) []pkix.Extension { return []pkix.Extension{keyUsage(0xa0, 5)} },
					says: `subject field "keyUsage": the request's keyUsage extension is not the one profile citizen-auth puts in the certificate (bits 000000101, the profile's 000000001)`},
				{name: "other extKeyUsage", exts: func(*ecdsa.PrivateKey) []pkix.Extension { return []pkix.Extension{eku(clientAuth, serverAuth)} },
					says: "the request's extKeyUsage extension is not the one profile citizen-auth puts in the certificate"},
				{name: "CA:TRUE", exts: func(*ecdsa.PrivateKey) []pkix.Extension { return []pkix.Extension{isCA} },
					says: "the request's basicConstraints extension is not the one profile citizen-auth puts in the certificate (a CA or a path length"},
				// encoding/asn1 reads a pathLenConstraint of -1 as none, and
				// skips an element after the ones it knows.
				{name: "path length -1", exts: func(*ecdsa.PrivateKey) []pkix.Extension {
					return []pkix.Extension{{Id: asn1.ObjectIdentifier{2, 5, 29, 19}, Value: []byte{0x30, 0x03, 0x02, 0x01, 0xff}}}
				}, says: "the request's basicConstraints extension is not the one profile citizen-auth puts in the certificate (a CA or a path length"},
				{name: "CA:FALSE and more", exts: func(*ecdsa.PrivateKey) []pkix.Extension {
					return []pkix.Extension{{Id: asn1.ObjectIdentifier{2, 5, 29, 19}, Value: []byte{0x30, 0x05, 0x01, 0x01, 0x00, 0x05, 0x00}}}
				}, says: "the request's basicConstraints extension is not the one profile citizen-auth puts in the certificate (malformed)"},
				{name: "another key's identifier", exts: func(*ecdsa.PrivateKey) []pkix.Extension { return []pkix.Extension{ski(other)} },
					says: "subjectKeyIdentifier extension is not the one profile citizen-auth puts in the certificate (it identifies another key"},
			} {
				for _, body := range []int{bodyIR, bodyP10CR} {
					k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
					der := certReqBodyTemplate(t, k, raSubjectName("IDCOM-12345678"), c.exts(k))
					if body == bodyP10CR {
						var err error
						if der, err = x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{Subject: raSubjectName("IDCOM-12345678"),
							ExtraExtensions: c.exts(k)}, k); err != nil {
							t.Fatal(err)
						}
					}
					ra.tx = nil
					a := parseAnswer(t, f.srv.Handle(ctx, ra.message(t, body, der), "citizen-auth"))
					if c.says == "" {
						if a.cert == nil || a.cert.KeyUsage != x509.KeyUsageDigitalSignature || a.cert.IsCA {
							t.Fatalf("RA %s asking for %s: %s %s, want it certified", bodyName(body), c.name, bodyName(a.m.bodyType), a.failInfo)
						}
						continue
					}
					if a.m.bodyType != bodyError || a.failInfo != "badCertTemplate" {
						t.Fatalf("RA %s asking for %s: %s %s, want badCertTemplate", bodyName(body), c.name, bodyName(a.m.bodyType), a.failInfo)
					}
					if text := statusText(t, a); !strings.Contains(text, c.says) {
						t.Fatalf("RA %s asking for %s: %q, want it to say %q", bodyName(body), c.name, text, c.says)
					}
					refusals++
				}
			}
			if n := f.count(t, "certificate.issue", "refused"); n != refusals {
				t.Fatalf("%d certificate.issue refusals audited, want %d", n, refusals)
			}
		})
	}
}

// malformedExtensions is the content of Extensions whose one extension's
// extnValue is a NULL, not an OCTET STRING.
var malformedExtensions = []byte{0x30, 0x08, 0x06, 0x02, 0x2a, 0x03, 0x05, 0x02, 0x05, 0x00}

// An ir under an enrolment's secret is certified with the enrolment's
// subject whatever its template names: an OU, a keyUsage other than the
// profile's, a dNSName, even malformed extensions are not read (only an
// RA's request is held to what it names).
func TestCMPEnrolmentTemplateUnread(t *testing.T) {
	f := newFixture(t, storetest.Dialects()[0])
	ref, secret := f.enrolment(t)
	k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	subject := raSubjectName("IDCOM-12345678")
	subject.OrganizationalUnit = []string{"Finance"}
	exts := []pkix.Extension{{Id: asn1.ObjectIdentifier{2, 5, 29, 15}, Critical: true, Value: []byte{0x03, 0x02, 0x06, 0x40}},
		subjectAltName(t, sanName(2, "aisha.example.om"))}
	a := parseAnswer(t, f.srv.Handle(t.Context(), (&client{ref: ref, secret: secret}).message(t, bodyIR, certReqBodyTemplate(t, k, subject, exts)), ""))
	if a.cert == nil {
		t.Fatalf("enrolment ir with OU, keyUsage and dNSName in its template: %s %s, want it certified", bodyName(a.m.bodyType), a.failInfo)
	}
	if len(a.cert.Subject.OrganizationalUnit) > 0 || len(a.cert.DNSNames) > 0 || a.cert.KeyUsage != x509.KeyUsageDigitalSignature {
		t.Fatalf("certificate %v %v %b took the template's OU, dNSName or keyUsage", a.cert.Subject, a.cert.DNSNames, a.cert.KeyUsage)
	}

	ref, secret = f.enrolment(t)
	k, _ = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	body := certReqBodyExtensions(t, k, subject, malformedExtensions)
	if a := parseAnswer(t, f.srv.Handle(t.Context(), (&client{ref: ref, secret: secret}).message(t, bodyIR, body), "")); a.cert == nil {
		t.Fatalf("enrolment ir with malformed template extensions: %s %s, want it certified", bodyName(a.m.bodyType), a.failInfo)
	}
}

// An RA's ir whose template's extensions are malformed is refused
// badCertTemplate before the CA is asked, and the refusal is audited
// (enrolment.refused) before the answer, as a malformed subject is.
func TestCMPRAMalformedTemplateExtensionsAudited(t *testing.T) {
	f := newFixture(t, storetest.Dialects()[0])
	raKey, raCert := selfSigned(t, "RA 1")
	f.srv.c.RA = func(_ context.Context, c *x509.Certificate, _ []*x509.Certificate) (string, error) {
		return "ra-1", nil
	}
	k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	for _, c := range []struct {
		name string
		ext  pkix.Extension
		says string
	}{
		{"malformed Extensions", pkix.Extension{Id: asn1.ObjectIdentifier{1, 2, 3}, Value: []byte{0x05, 0x00}}, "template extensions: malformed Extensions"},
		{"malformed subjectAltName", pkix.Extension{Id: asn1.ObjectIdentifier{2, 5, 29, 17}, Value: []byte{0x04, 0x00}}, "template subjectAltName: malformed subjectAltName"},
	} {
		body := certReqBodyTemplate(t, k, raSubjectName("IDCOM-12345678"), []pkix.Extension{c.ext})
		if c.name == "malformed Extensions" {
			body = certReqBodyExtensions(t, k, raSubjectName("IDCOM-12345678"), malformedExtensions)
		}
		before := f.count(t, "enrolment.refused", "refused")
		a := parseAnswer(t, f.srv.Handle(t.Context(), (&client{key: raKey, cert: raCert}).message(t, bodyIR, body), "citizen-auth"))
		if a.m.bodyType != bodyError || a.failInfo != "badCertTemplate" || !strings.Contains(statusText(t, a), c.says) {
			t.Fatalf("RA ir with %s: %s %s, want badCertTemplate saying %q", c.name, bodyName(a.m.bodyType), a.failInfo, c.says)
		}
		if n := f.count(t, "enrolment.refused", "refused"); n != before+1 {
			t.Fatalf("RA ir with %s: %d enrolment.refused records, want %d", c.name, n, before+1)
		}
	}
}
