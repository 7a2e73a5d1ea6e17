package ca_test

import (
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"slices"
	"strings"
	"testing"

	"github.com/thiqa/thiqa/ca"
)

// SubjectUnsupported names, by short name or OID, every subject attribute
// SubjectFields does not read, a value it reads that is not a string, a
// subjectAltName name that is not an rfc822Name and any other requested
// extension than those the CA compares with the profile (keyUsage,
// extKeyUsage, basicConstraints, subjectKeyIdentifier); a request naming
// only what the profiles carry passes.
func TestSubjectUnsupported(t *testing.T) {
	attr := func(oid asn1.ObjectIdentifier, v any) pkix.AttributeTypeAndValue {
		return pkix.AttributeTypeAndValue{Type: oid, Value: v}
	}
	san := func(names ...asn1.RawValue) pkix.Extension {
		v, _ := asn1.Marshal(names)
		return pkix.Extension{Id: asn1.ObjectIdentifier{2, 5, 29, 17}, Value: v}
	}
	email := asn1.RawValue{Class: asn1.ClassContextSpecific, Tag: 1, Bytes: []byte("a@example.om")}
	plain := []pkix.AttributeTypeAndValue{attr(asn1.ObjectIdentifier{2, 5, 4, 6}, "OM"), attr(asn1.ObjectIdentifier{2, 5, 4, 5}, "IDCOM-12345678"),
		attr(asn1.ObjectIdentifier{2, 5, 4, 97}, "NTROM-1"), attr(asn1.ObjectIdentifier{2, 5, 4, 10}, "Org"), attr(asn1.ObjectIdentifier{2, 5, 4, 42}, "Aisha"),
		attr(asn1.ObjectIdentifier{2, 5, 4, 4}, "Al Harthy"), attr(asn1.ObjectIdentifier{2, 5, 4, 3}, "Aisha Al Harthy")}
	for _, c := range []struct {
		name   string
		names  []pkix.AttributeTypeAndValue
		exts   []pkix.Extension
		emails []string
		fields []string
		says   string
	}{
		{name: "plain", names: plain, exts: []pkix.Extension{san(email)}},
		{name: "OU and L", names: append(slices.Clone(plain), attr(asn1.ObjectIdentifier{2, 5, 4, 11}, "Finance"), attr(asn1.ObjectIdentifier{2, 5, 4, 7}, "Muscat")),
			fields: []string{"OU", "L"}, says: "names OU (2.5.4.11), which the certificate would not carry"},
		{name: "unknown OID", names: []pkix.AttributeTypeAndValue{attr(asn1.ObjectIdentifier{1, 2, 3, 4}, "x")}, fields: []string{"1.2.3.4"}, says: "names 1.2.3.4,"},
		{name: "emailAddress", names: []pkix.AttributeTypeAndValue{attr(asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 9, 1}, "a@example.om")},
			fields: []string{"emailAddress"}, says: "emailAddress (1.2.840.113549.1.9.1)"},
		{name: "serialNumber bytes", names: []pkix.AttributeTypeAndValue{attr(asn1.ObjectIdentifier{2, 5, 4, 5}, []byte("IDCOM-1"))},
			fields: []string{"civilNumber"}, says: "serialNumber attribute is not a string"},
		{name: "empty O", names: []pkix.AttributeTypeAndValue{attr(asn1.ObjectIdentifier{2, 5, 4, 10}, "")},
			fields: []string{"organizationName"}, says: "the request's O attribute is empty"},
		{name: "empty email", exts: []pkix.Extension{san(asn1.RawValue{Class: asn1.ClassContextSpecific, Tag: 1, Bytes: []byte{}})}, emails: []string{""},
			fields: []string{"subjectAltName"}, says: "has an empty email address"},
		{name: "dNSName and otherName", exts: []pkix.Extension{san(email, asn1.RawValue{Class: asn1.ClassContextSpecific, Tag: 2, Bytes: []byte("example.om")},
			asn1.RawValue{Class: asn1.ClassContextSpecific, Tag: 0, IsCompound: true, Bytes: []byte{0x06, 0x01, 0x2a}})},
			fields: []string{"subjectAltName", "subjectAltName"}, says: "subjectAltName has a name of type otherName"},
		{name: "malformed subjectAltName", exts: []pkix.Extension{{Id: asn1.ObjectIdentifier{2, 5, 29, 17}, Value: []byte{0x04, 0x00}}},
			fields: []string{"subjectAltName"}, says: "cannot be read"},
		// keyUsage, extKeyUsage, basicConstraints and subjectKeyIdentifier
		// are the CA's to compare with the profile (Request.Extensions).
		{name: "extensions", exts: []pkix.Extension{{Id: asn1.ObjectIdentifier{2, 5, 29, 15}}, {Id: asn1.ObjectIdentifier{2, 5, 29, 19}},
			{Id: asn1.ObjectIdentifier{2, 5, 29, 37}}, {Id: asn1.ObjectIdentifier{2, 5, 29, 14}}, {Id: asn1.ObjectIdentifier{2, 5, 29, 18}}, {Id: asn1.ObjectIdentifier{1, 2, 3}}},
			fields: []string{"issuerAltName", "1.2.3"}, says: "asks for the issuerAltName extension, which the CA does not take from a request"},
	} {
		crt := &x509.Certificate{Extensions: c.exts, EmailAddresses: c.emails}
		crt.Subject.Names = c.names
		got := ca.SubjectUnsupported(crt)
		var fields []string
		var text []string
		for _, e := range got {
			fields, text = append(fields, e.Field), append(text, e.Error())
		}
		if !slices.Equal(fields, c.fields) {
			t.Errorf("%s: fields %v, want %v (%v)", c.name, fields, c.fields, text)
		}
		if c.says != "" && !strings.Contains(strings.Join(text, "; "), c.says) {
			t.Errorf("%s: %v, want it to say %q", c.name, text, c.says)
		}
	}
}
