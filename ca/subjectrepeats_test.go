package ca_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"slices"
	"testing"

	"github.com/thiqa/thiqa/ca"
)

// SubjectRepeats finds an attribute given twice whether in RDNs of their
// own or in one multi-valued RDN (RFC 5280 allows both), and names
// nothing in a subject that gives each once.
func TestSubjectRepeats(t *testing.T) {
	oidC, oidSN, oidCN := asn1.ObjectIdentifier{2, 5, 4, 6}, asn1.ObjectIdentifier{2, 5, 4, 5}, asn1.ObjectIdentifier{2, 5, 4, 3}
	k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	parse := func(rdns pkix.RDNSequence) *x509.Certificate {
		t.Helper()
		raw, err := asn1.Marshal(rdns)
		if err != nil {
			t.Fatal(err)
		}
		der, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{RawSubject: raw}, k)
		if err != nil {
			t.Fatal(err)
		}
		csr, err := x509.ParseCertificateRequest(der)
		if err != nil {
			t.Fatal(err)
		}
		return &x509.Certificate{Subject: csr.Subject}
	}
	for _, c := range []struct {
		name string
		rdns pkix.RDNSequence
		want []string
	}{
		{"each once", pkix.RDNSequence{{{Type: oidC, Value: "OM"}}, {{Type: oidSN, Value: "IDCOM-12345678"}}, {{Type: oidCN, Value: "Aisha"}}}, nil},
		{"multi-valued RDN", pkix.RDNSequence{{{Type: oidC, Value: "AE"}, {Type: oidC, Value: "OM"}}, {{Type: oidSN, Value: "IDCOM-12345678"}}}, []string{"C"}},
		{"RDNs of their own", pkix.RDNSequence{{{Type: oidC, Value: "OM"}}, {{Type: oidSN, Value: "IDCOM-1"}}, {{Type: oidSN, Value: "IDCOM-2"}},
			{{Type: oidCN, Value: "A"}}, {{Type: oidCN, Value: "B"}}}, []string{"serialNumber", "CN"}},
	} {
		if got := ca.SubjectRepeats(parse(c.rdns)); !slices.Equal(got, c.want) {
			t.Errorf("%s: SubjectRepeats %v, want %v", c.name, got, c.want)
		}
	}
}

// SubjectRepeats names rfc822Name for more than one email address in the
// subjectAltName (SubjectFields keeps the first alone), and nothing for one.
func TestSubjectRepeatsEmail(t *testing.T) {
	if got := ca.SubjectRepeats(&x509.Certificate{EmailAddresses: []string{"a@example.om"}}); got != nil {
		t.Errorf("one email address: %v", got)
	}
	if got := ca.SubjectRepeats(&x509.Certificate{EmailAddresses: []string{"a@example.om", "b@example.ae"}}); !slices.Equal(got, []string{"rfc822Name"}) {
		t.Errorf("two email addresses: %v, want [rfc822Name]", got)
	}
}
