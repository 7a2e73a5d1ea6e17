package ca_test

import (
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"slices"
	"testing"

	"github.com/thiqa/thiqa/ca"
	"github.com/thiqa/thiqa/internal/auth"
	"github.com/thiqa/thiqa/policies"
)

// FuzzSubjectFields reads a Name as an RA's CMP certTemplate gives it
// (encoding/asn1 into pkix.RDNSequence, as enrol/cmp does): SubjectFields
// and SubjectRepeats never panic, whatever the attributes' string types,
// empty values or multi-valued RDNs; and when nothing repeats, the civil
// number read is the one of the serialNumber the request passes
// (Request.SerialNumber), so CheckSerialNumber compares what was read.
func FuzzSubjectFields(f *testing.F) {
	oidC, oidSN, oidCN := asn1.ObjectIdentifier{2, 5, 4, 6}, asn1.ObjectIdentifier{2, 5, 4, 5}, asn1.ObjectIdentifier{2, 5, 4, 3}
	for _, rdns := range []pkix.RDNSequence{
		{{{Type: oidC, Value: "OM"}}, {{Type: oidSN, Value: "IDCOM-12345678"}}, {{Type: oidCN, Value: "Aisha"}}},
		{{{Type: oidC, Value: "AE"}, {Type: oidC, Value: "OM"}}, {{Type: oidSN, Value: "IDCAE-12345678"}}},
		{{{Type: oidC, Value: "om"}}, {{Type: oidSN, Value: "PASOM-12345678"}}, {{Type: oidCN, Value: ""}}},
		{{{Type: oidSN, Value: []byte("IDCOM-12345678")}}, {{Type: oidSN, Value: "IDCOM-1"}}},
		{{{Type: oidC, Value: asn1.RawValue{Tag: 28, Bytes: []byte{0, 0, 0, 'O', 0, 0, 0, 'M'}}}}, {{Type: oidCN, Value: 7}}},
		{{}, {{Type: asn1.ObjectIdentifier{2, 5, 4, 97}, Value: "NTROM-1"}, {Type: oidSN, Value: "IDCOM-1234 5678"}}},
	} {
		der, err := asn1.Marshal(rdns)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(der)
	}
	f.Fuzz(func(t *testing.T, der []byte) {
		var rdns pkix.RDNSequence
		if _, err := asn1.Unmarshal(der, &rdns); err != nil {
			return
		}
		c := &x509.Certificate{}
		c.Subject.FillFromRDNSequence(&rdns)
		fields, repeats, unsupported := ca.SubjectFields(c), ca.SubjectRepeats(c), ca.SubjectUnsupported(c)
		if len(repeats) == 0 && fields[policies.FieldCivilNumber] != auth.CivilNumber(c.Subject.SerialNumber) {
			t.Fatalf("civil number %q read, serialNumber passed %q", fields[policies.FieldCivilNumber], c.Subject.SerialNumber)
		}
		// Nothing unsupported: every attribute is one SubjectFields reads,
		// as a string, so none was dropped.
		if len(unsupported) == 0 {
			for _, n := range c.Subject.Names {
				if _, ok := n.Value.(string); !ok || !read[n.Type.String()] {
					t.Fatalf("attribute %s (%T) passed SubjectUnsupported", n.Type, n.Value)
				}
			}
		}
	})
}

// read are the attributes SubjectFields reads.
var read = map[string]bool{"2.5.4.6": true, "2.5.4.5": true, "2.5.4.97": true, "2.5.4.10": true, "2.5.4.42": true, "2.5.4.4": true, "2.5.4.3": true}

// FuzzSubjectAltName reads a subjectAltName extension's value as an RA's
// CMP certTemplate or CSR gives it: SubjectAltName and SubjectUnsupported
// never panic, and a value SubjectAltName reads with (non-empty) email
// addresses alone is one SubjectUnsupported passes.
func FuzzSubjectAltName(f *testing.F) {
	for _, names := range [][]asn1.RawValue{
		{{Class: asn1.ClassContextSpecific, Tag: 1, Bytes: []byte("aisha@example.om")}},
		{{Class: asn1.ClassContextSpecific, Tag: 1, Bytes: []byte("a@example.om")}, {Class: asn1.ClassContextSpecific, Tag: 2, Bytes: []byte("example.om")}},
		{{Class: asn1.ClassContextSpecific, Tag: 0, IsCompound: true, Bytes: []byte{0x06, 0x01, 0x2a, 0xa0, 0x00}}},
		{{Class: asn1.ClassContextSpecific, Tag: 7, Bytes: []byte{127, 0, 0, 1}}, {Class: asn1.ClassContextSpecific, Tag: 1, Bytes: []byte{0xff}}},
	} {
		der, err := asn1.Marshal(names)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(der)
	}
	f.Fuzz(func(t *testing.T, value []byte) {
		emails, others, err := ca.SubjectAltName(value)
		c := &x509.Certificate{EmailAddresses: emails, Extensions: []pkix.Extension{{Id: asn1.ObjectIdentifier{2, 5, 29, 17}, Value: value}}}
		unsupported := ca.SubjectUnsupported(c)
		if err == nil && len(others) == 0 && !slices.Contains(emails, "") && len(unsupported) != 0 {
			t.Fatalf("subjectAltName of email addresses %v alone refused: %v", emails, unsupported)
		}
		if (err != nil || len(others) > 0) && len(unsupported) == 0 {
			t.Fatalf("subjectAltName with %v (%v) passed", others, err)
		}
	})
}
