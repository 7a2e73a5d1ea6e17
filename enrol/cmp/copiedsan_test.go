package cmp

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"math/big"
	"net"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/thiqa/thiqa/store/storetest"
)

// An RA's ir whose certTemplate names the RA certificate's own host
// (openssl cmp copies its -cert's subjectAltName into the template unless
// given -sans or -san_nodefault) is refused saying so and how to keep it
// out; it used to say only "a name of type dNSName", leaving the operator
// to guess where the name came from. A copied name is refused once, by
// the hint alone (it was refused twice, the plain refusal besides). A
// dNSName of another host gets the plain refusal, with no word of copying,
// also next to a copied one. The same for a cr.
func TestCMPRACopiedSubjectAltNameHint(t *testing.T) {
	for _, d := range storetest.Dialects() {
		t.Run(d.Name, func(t *testing.T) {
			f, ra := newRAFixture(t, d)
			u, _ := url.Parse("https://ra.example.om/cmp")
			tmpl := &x509.Certificate{SerialNumber: big.NewInt(9), Subject: pkix.Name{CommonName: "RA 3"},
				DNSNames: []string{"ra.example.om"}, IPAddresses: []net.IP{net.IPv4(10, 0, 0, 7)}, URIs: []*url.URL{u},
				NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), KeyUsage: x509.KeyUsageDigitalSignature, SubjectKeyId: []byte{9, 9, 9, 9}}
			der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, ra.key.Public(), ra.key)
			if err != nil {
				t.Fatal(err)
			}
			raCert, _ := x509.ParseCertificate(der)
			ra3 := &client{key: ra.key, cert: raCert}
			for _, c := range []struct {
				name  string
				names []asn1.RawValue
				says  []string
				not   []string
			}{
				{name: "RA's own names", names: []asn1.RawValue{sanName(2, "ra.example.om"), {Class: asn1.ClassContextSpecific, Tag: 7, Bytes: []byte{10, 0, 0, 7}}, sanName(6, u.String())},
					says: []string{`subjectAltName dNSName "ra.example.om" is the one of the RA certificate that signed the request (openssl cmp copies its -cert's subjectAltName unless given -sans or -san_nodefault)`,
						"subjectAltName iPAddress 10.0.0.7 is the one of the RA certificate",
						`subjectAltName uniformResourceIdentifier "https://ra.example.om/cmp" is the one of the RA certificate`},
					not: []string{"would not carry"}},
				{name: "another host", names: []asn1.RawValue{sanName(2, "aisha.example.om")},
					says: []string{"subjectAltName has a name of type dNSName, which the certificate would not carry"}, not: []string{"san_nodefault"}},
				{name: "the RA's host and another", names: []asn1.RawValue{sanName(2, "ra.example.om"), sanName(6, "https://aisha.example.om/")},
					says: []string{`subjectAltName dNSName "ra.example.om" is the one of the RA certificate`,
						"subjectAltName has a name of type uniformResourceIdentifier, which the certificate would not carry"},
					not: []string{"name of type dNSName", "uniformResourceIdentifier \""}},
			} {
				k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
				body := certReqBodyTemplate(t, k, raSubjectName("IDCOM-12345678"), []pkix.Extension{subjectAltName(t, c.names...)})
				for _, bt := range []int{bodyIR, bodyCR} { // openssl cmp fills both
					ra3.tx = nil
					a := parseAnswer(t, f.srv.Handle(t.Context(), ra3.message(t, bt, body), "citizen-auth"))
					if a.m.bodyType != bodyError || a.failInfo != "badCertTemplate" {
						t.Fatalf("%s, %s: %s %s, want badCertTemplate", c.name, bodyName(bt), bodyName(a.m.bodyType), a.failInfo)
					}
					text := statusText(t, a)
					for _, s := range c.says {
						if !strings.Contains(text, s) {
							t.Errorf("%s, %s: the refusal %q does not say %q", c.name, bodyName(bt), text, s)
						}
					}
					for _, n := range c.not {
						if strings.Contains(text, n) {
							t.Errorf("%s, %s: the refusal %q says %q", c.name, bodyName(bt), text, n)
						}
					}
				}
			}
			if n := f.count(t, "certificate.issue", "success"); n != 0 {
				t.Fatalf("%d certificates issued", n)
			}
		})
	}
}

// FuzzSignerNames: any template subjectAltName, against a signer naming a
// host, an address and an email, is read without panicking, a name is
// reported copied only when the template names it, and what is left for
// SubjectUnsupported is the template's names less the ones reported.
func FuzzSignerNames(f *testing.F) {
	signer := &x509.Certificate{}
	own, err := asn1.Marshal([]asn1.RawValue{sanName(2, "ra.example.om"), {Class: asn1.ClassContextSpecific, Tag: 7, Bytes: []byte{10, 0, 0, 7}}, sanName(1, "ra@example.om")})
	if err != nil {
		f.Fatal(err)
	}
	signer.Extensions = []pkix.Extension{{Id: oidSubjectAltName, Value: own}}
	host, err := asn1.Marshal(sanName(2, "ra.example.om"))
	if err != nil {
		f.Fatal(err)
	}
	f.Add(own)
	for _, names := range [][]asn1.RawValue{
		{sanName(2, "aisha.example.om")},
		{sanName(1, "ra@example.om"), sanName(2, "ra.example.om")},
		{{Class: asn1.ClassContextSpecific, Tag: 2, IsCompound: true, Bytes: []byte{0x04, 0x00}}},
	} {
		der, err := asn1.Marshal(names)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(der)
	}
	f.Fuzz(func(t *testing.T, value []byte) {
		names, rest := signerNames(value, signer)
		for _, n := range names {
			if !strings.Contains(n, "ra.example.om") && !strings.Contains(n, "10.0.0.7") {
				t.Fatalf("%q reported as the signer's own", n)
			}
		}
		if names == nil {
			if !bytes.Equal(rest, value) {
				t.Fatalf("nothing copied, yet %x left of %x", rest, value)
			}
			return
		}
		var asked, left []asn1.RawValue
		if _, err := asn1.Unmarshal(value, &asked); err != nil {
			t.Fatal(err)
		}
		if trail, err := asn1.Unmarshal(rest, &left); err != nil || len(trail) > 0 {
			t.Fatalf("%x left: %v", rest, err)
		}
		if len(left)+len(names) != len(asked) {
			t.Fatalf("%d names, %d reported copied, %d left", len(asked), len(names), len(left))
		}
		for _, n := range left {
			if bytes.Equal(n.FullBytes, host) {
				t.Fatalf("the signer's host left in %x", rest)
			}
		}
	})
}
