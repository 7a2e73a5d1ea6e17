package ca

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"errors"
	"strings"
	"testing"

	"github.com/thiqa/thiqa/policies"
)

var (
	oidKeyUsage         = asn1.ObjectIdentifier{2, 5, 29, 15}
	oidExtKeyUsage      = asn1.ObjectIdentifier{2, 5, 29, 37}
	oidBasicConstraints = asn1.ObjectIdentifier{2, 5, 29, 19}
	oidSKI              = asn1.ObjectIdentifier{2, 5, 29, 14}
)

// requestedProfiles are a profile with an extKeyUsage (clientAuth) and one
// without, as the shipped profiles have (citizen-auth, a signing one).
func requestedProfiles() (withEKU, withoutEKU *policies.Profile) {
	return &policies.Profile{Name: "auth", KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}},
		&policies.Profile{Name: "sign", KeyUsage: x509.KeyUsageContentCommitment}
}

// An RA's requested keyUsage, extKeyUsage and basicConstraints are
// accepted only when they say what the certificate carries, read by their
// meaning, not their spelling: a keyUsage with trailing zero bits or the
// default cA FALSE spelt out is the certificate's. What is not is refused:
// an empty extKeyUsage (malformed) or any extKeyUsage when the profile puts
// none in the certificate, a basicConstraints whose pathLenConstraint is
// -1 (encoding/asn1 read it as "none") or that carries an element after
// cA, duplicate or other purposes, a path length of 0.
func TestRequestedExtensionsByMeaning(t *testing.T) {
	k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	auth, sign := requestedProfiles()
	clientAuth, anyEKU := asn1.ObjectIdentifier{1, 3, 6, 1, 5, 5, 7, 3, 2}, asn1.ObjectIdentifier{2, 5, 29, 37, 0}
	ekus := func(oids ...asn1.ObjectIdentifier) []byte { v, _ := asn1.Marshal(oids); return v }
	for _, c := range []struct {
		name  string
		p     *policies.Profile
		id    asn1.ObjectIdentifier
		value []byte
		says  string // "" when accepted
	}{
		{"keyUsage DER", auth, oidKeyUsage, []byte{0x03, 0x02, 0x07, 0x80}, ""},
		{"keyUsage trailing zero bits", auth, oidKeyUsage, []byte{0x03, 0x03, 0x00, 0x80, 0x00}, ""},
		{"keyUsage bit 9", auth, oidKeyUsage, []byte{0x03, 0x03, 0x06, 0x80, 0x40}, "bit 9 set"},
		{"keyUsage other bits", sign, oidKeyUsage, []byte{0x03, 0x02, 0x07, 0x80}, "bits 000000001, the profile's 000000010"},
		{"extKeyUsage the profile's", auth, oidExtKeyUsage, ekus(clientAuth), ""},
		{"extKeyUsage twice the profile's", auth, oidExtKeyUsage, ekus(clientAuth, clientAuth), "purposes"},
		{"extKeyUsage anyExtendedKeyUsage", auth, oidExtKeyUsage, ekus(clientAuth, anyEKU), "purposes"},
		{"extKeyUsage empty", auth, oidExtKeyUsage, []byte{0x30, 0x00}, "malformed: no purpose"},
		{"extKeyUsage empty, profile has none", sign, oidExtKeyUsage, []byte{0x30, 0x00}, "malformed: no purpose"},
		{"extKeyUsage, profile has none", sign, oidExtKeyUsage, ekus(clientAuth), "the certificate carries no extKeyUsage"},
		{"basicConstraints DER", auth, oidBasicConstraints, []byte{0x30, 0x00}, ""},
		{"basicConstraints cA FALSE spelt out", auth, oidBasicConstraints, []byte{0x30, 0x03, 0x01, 0x01, 0x00}, ""},
		{"basicConstraints CA", auth, oidBasicConstraints, []byte{0x30, 0x03, 0x01, 0x01, 0xff}, "a CA or a path length"},
		{"basicConstraints pathLen 0", auth, oidBasicConstraints, []byte{0x30, 0x03, 0x02, 0x01, 0x00}, "a CA or a path length"},
		{"basicConstraints pathLen -1", auth, oidBasicConstraints, []byte{0x30, 0x03, 0x02, 0x01, 0xff}, "a CA or a path length"},
		{"basicConstraints FALSE, pathLen -1", auth, oidBasicConstraints, []byte{0x30, 0x06, 0x01, 0x01, 0x00, 0x02, 0x01, 0xff}, "a CA or a path length"},
		{"basicConstraints trailing element", auth, oidBasicConstraints, []byte{0x30, 0x02, 0x04, 0x00}, "malformed"},
		{"basicConstraints FALSE then trailing element", auth, oidBasicConstraints, []byte{0x30, 0x05, 0x01, 0x01, 0x00, 0x05, 0x00}, "malformed"},
		{"basicConstraints BOOLEAN 01", auth, oidBasicConstraints, []byte{0x30, 0x03, 0x01, 0x01, 0x01}, "malformed"},
		{"basicConstraints SET", auth, oidBasicConstraints, []byte{0x31, 0x00}, "malformed"},
	} {
		err := checkRequestedExtensions(c.p, &k.PublicKey, []pkix.Extension{{Id: c.id, Value: c.value}})
		if c.says == "" {
			if err != nil {
				t.Errorf("%s: %v, want it accepted", c.name, err)
			}
			continue
		}
		var se *policies.SubjectError
		if !errors.As(err, &se) || !strings.Contains(err.Error(), c.says) {
			t.Errorf("%s: %v, want a *policies.SubjectError saying %q", c.name, err, c.says)
		}
	}
}
