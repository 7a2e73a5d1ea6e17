package cmp

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"math/big"
	"strings"
	"testing"

	"github.com/thiqa/thiqa/store/storetest"
)

// raSubjectName is the subject an RA names for citizen Aisha of C=OM
// with serialNumber serialNumber.
func raSubjectName(serialNumber string) pkix.Name {
	return pkix.Name{CommonName: "Aisha Al Harthy", Country: []string{"OM"}, ExtraNames: []pkix.AttributeTypeAndValue{
		{Type: asn1.ObjectIdentifier{2, 5, 4, 42}, Value: "Aisha"}, {Type: asn1.ObjectIdentifier{2, 5, 4, 4}, Value: "Al Harthy"},
		{Type: asn1.ObjectIdentifier{2, 5, 4, 5}, Value: serialNumber}}}
}

// newRAFixture is newFixture with an RA: any certificate presented is
// RA "ra-1"; the client returned signs with RA 1's key and certificate.
func newRAFixture(t *testing.T, d storetest.Dialect) (*fixture, *client) {
	t.Helper()
	f := newFixture(t, d)
	raKey, raCert := selfSigned(t, "RA 1")
	f.srv.c.RA = func(context.Context, *x509.Certificate, []*x509.Certificate) (string, error) {
		return "ra-1", nil
	}
	return f, &client{key: raKey, cert: raCert}
}

// raRefused sends ra's ir with body ir and, when a CSR can be made of csr
// with k, its p10cr, for profile citizen-auth, and wants each refused
// with badCertTemplate, its statusString saying says (name names the
// case). It returns the number of requests sent.
func raRefused(t *testing.T, f *fixture, ra *client, name string, ir []byte, csr *x509.CertificateRequest, k crypto.Signer, says string) int {
	t.Helper()
	bodies := []struct {
		name     string
		bodyType int
		body     []byte
	}{{"ir", bodyIR, ir}}
	if der, err := x509.CreateCertificateRequest(rand.Reader, csr, k); err == nil {
		bodies = append(bodies, struct {
			name     string
			bodyType int
			body     []byte
		}{"p10cr", bodyP10CR, der})
	}
	for _, req := range bodies {
		ra.tx = nil
		a := parseAnswer(t, f.srv.Handle(t.Context(), ra.message(t, req.bodyType, req.body), "citizen-auth"))
		if a.m.bodyType != bodyError || a.failInfo != "badCertTemplate" {
			t.Fatalf("RA %s with %s: %s %s, want badCertTemplate", req.name, name, bodyName(a.m.bodyType), a.failInfo)
		}
		if text := statusText(t, a); !strings.Contains(text, says) {
			t.Errorf("RA %s with %s: statusString %q, want it to say %q", req.name, name, text, says)
		}
	}
	return len(bodies)
}

// certReqBodySubject is certReqBody (signature POP by key) whose template
// names subject.
func certReqBodySubject(t *testing.T, key crypto.Signer, subject pkix.Name) []byte {
	t.Helper()
	return certReqBodyTemplate(t, key, subject, nil)
}

// certReqBodyTemplate is certReqBodySubject whose template carries exts
// too (none when nil).
func certReqBodyTemplate(t *testing.T, key crypto.Signer, subject pkix.Name, exts []pkix.Extension) []byte {
	t.Helper()
	var content []byte
	if exts != nil {
		der, err := asn1.Marshal(exts)
		if err != nil {
			t.Fatal(err)
		}
		var seq asn1.RawValue
		_, _ = asn1.Unmarshal(der, &seq)
		content = seq.Bytes
	}
	return certReqBodyExtensions(t, key, subject, content)
}

// certReqBodyExtensions is certReqBodySubject whose template's extensions
// ([9] IMPLICIT Extensions) have content exts, well-formed or not (none
// when nil).
func certReqBodyExtensions(t *testing.T, key crypto.Signer, subject pkix.Name, exts []byte) []byte {
	t.Helper()
	spki, _ := x509.MarshalPKIXPublicKey(key.Public())
	var spkiRaw asn1.RawValue
	_, _ = asn1.Unmarshal(spki, &spkiRaw)
	name, err := asn1.Marshal(subject.ToRDNSequence())
	if err != nil {
		t.Fatal(err)
	}
	tmpl := certTemplate{Subject: asn1.RawValue{Class: asn1.ClassContextSpecific, Tag: 5, IsCompound: true, Bytes: name},
		PublicKey: asn1.RawValue{Class: asn1.ClassContextSpecific, Tag: 6, IsCompound: true, Bytes: spkiRaw.Bytes}}
	if exts != nil {
		tmpl.Extensions = asn1.RawValue{Class: asn1.ClassContextSpecific, Tag: 9, IsCompound: true, Bytes: exts}
	}
	tDER, err := asn1.Marshal(tmpl)
	if err != nil {
		t.Fatal(err)
	}
	crDER, _ := asn1.Marshal(certRequest{CertReqID: big.NewInt(0), Template: asn1.RawValue{FullBytes: tDER}})
	d := sha256.Sum256(crDER)
	sig, _ := key.Sign(rand.Reader, d[:], crypto.SHA256)
	sk, _ := asn1.Marshal(popoSigningKey{Algorithm: pkix.AlgorithmIdentifier{Algorithm: signatureAlgorithms[0].oid}, Signature: asn1.BitString{Bytes: sig, BitLength: 8 * len(sig)}})
	var skRaw asn1.RawValue
	_, _ = asn1.Unmarshal(sk, &skRaw)
	body, _ := asn1.Marshal([]certReqMsg{{CertReq: asn1.RawValue{FullBytes: crDER}, POPO: asn1.RawValue{Class: asn1.ClassContextSpecific, Tag: 1, IsCompound: true, Bytes: skRaw.Bytes}}})
	return body
}

// An RA's ir (certTemplate subject) and p10cr (CSR subject) are read as
// C for the country and serialNumber IDC<C>-<number> for the civil
// number: a subject naming citizen IDCAE-12345678 under C=OM is refused
// with badCertTemplate naming the serialNumber, nothing issued and the
// CA's refusal audited, where it used to be certified as IDCOM-12345678
// (another person, holding the AE citizen's key). A subject whose C and
// serialNumber agree is certified.
func TestCMPRASubjectSerialNumberAgreesWithCountry(t *testing.T) {
	for _, d := range storetest.Dialects() {
		t.Run(d.Name, func(t *testing.T) {
			f, ra := newRAFixture(t, d)
			ctx := t.Context()
			k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
			csr, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{Subject: raSubjectName("IDCAE-12345678")}, k)
			if err != nil {
				t.Fatal(err)
			}
			for _, req := range []struct {
				name     string
				bodyType int
				body     []byte
			}{
				{"p10cr", bodyP10CR, csr},
				{"ir", bodyIR, certReqBodySubject(t, k, raSubjectName("IDCAE-12345678"))},
			} {
				ra.tx = nil
				a := parseAnswer(t, f.srv.Handle(ctx, ra.message(t, req.bodyType, req.body), "citizen-auth"))
				if a.m.bodyType != bodyError || a.failInfo != "badCertTemplate" {
					subject := ""
					if a.cert != nil {
						subject = a.cert.Subject.String()
					}
					t.Fatalf("RA %s for C=OM, serialNumber IDCAE-12345678: %s %s %s, want badCertTemplate", req.name, bodyName(a.m.bodyType), a.failInfo, subject)
				}
			}
			if n := f.count(t, "certificate.issue", "success"); n != 0 {
				t.Fatalf("%d certificates issued", n)
			}
			if n := f.count(t, "certificate.issue", "refused"); n != 2 {
				t.Fatalf("%d certificate.issue refusals audited, want 2", n)
			}
			ra.tx = nil
			a := parseAnswer(t, f.srv.Handle(ctx, ra.message(t, bodyIR, certReqBodySubject(t, k, raSubjectName("IDCOM-12345678"))), "citizen-auth"))
			if a.m.bodyType != bodyIP || a.cert == nil || a.cert.Subject.SerialNumber != "IDCOM-12345678" {
				t.Fatalf("RA ir for C=OM, serialNumber IDCOM-12345678: %s %s", bodyName(a.m.bodyType), a.failInfo)
			}
		})
	}
}

// An RA's request whose subject names two countries or two serialNumbers
// is refused (badCertTemplate naming the attribute, nothing issued, the
// CA's refusal audited), in a p10cr's CSR as in an ir's template: it used
// to be certified with whichever came last, C=OM after C=AE, the second
// of two civil numbers.
func TestCMPRASubjectRepeatedAttributesRefused(t *testing.T) {
	for _, d := range storetest.Dialects() {
		t.Run(d.Name, func(t *testing.T) {
			f, ra := newRAFixture(t, d)
			ctx := t.Context()
			k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
			twoCountries := raSubjectName("IDCOM-12345678")
			twoCountries.Country = nil
			twoCountries.ExtraNames = append([]pkix.AttributeTypeAndValue{{Type: asn1.ObjectIdentifier{2, 5, 4, 6}, Value: "AE"},
				{Type: asn1.ObjectIdentifier{2, 5, 4, 6}, Value: "OM"}}, twoCountries.ExtraNames...)
			twoNumbers := raSubjectName("IDCOM-12345678")
			twoNumbers.ExtraNames = append(twoNumbers.ExtraNames, pkix.AttributeTypeAndValue{Type: asn1.ObjectIdentifier{2, 5, 4, 5}, Value: "IDCOM-87654321"})
			refusals := 0
			for _, c := range []struct {
				name    string
				subject pkix.Name
			}{{"two C", twoCountries}, {"two serialNumber", twoNumbers}} {
				csr, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{Subject: c.subject}, k)
				if err != nil {
					t.Fatal(err)
				}
				for _, req := range []struct {
					name     string
					bodyType int
					body     []byte
				}{
					{"p10cr", bodyP10CR, csr},
					{"ir", bodyIR, certReqBodySubject(t, k, c.subject)},
				} {
					ra.tx = nil
					a := parseAnswer(t, f.srv.Handle(ctx, ra.message(t, req.bodyType, req.body), "citizen-auth"))
					if a.m.bodyType != bodyError || a.failInfo != "badCertTemplate" {
						subject := ""
						if a.cert != nil {
							subject = a.cert.Subject.String()
						}
						t.Fatalf("RA %s with %s: %s %s %s, want badCertTemplate", req.name, c.name, bodyName(a.m.bodyType), a.failInfo, subject)
					}
					refusals++
				}
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
