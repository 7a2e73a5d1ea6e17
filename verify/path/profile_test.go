package path

import (
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"errors"
	"math/big"
	"strings"
	"testing"
	"time"
)

// emptyKeyUsage is a keyUsage extension whose BIT STRING asserts no bit.
var emptyKeyUsage = pkix.Extension{Id: asn1.ObjectIdentifier{2, 5, 29, 15}, Critical: true, Value: []byte{0x03, 0x01, 0x00}}

// TestEmptyKeyUsageIsNotAbsent: Go reports KeyUsage 0 both for a missing
// keyUsage extension and for one with no bit set. A CA whose keyUsage is
// present but empty has not been authorised to sign certificates
// (RFC 5280 §6.1.4 (n)); it must not pass as if the extension were absent
// (limbo rfc5280::root-inconsistent-ca-extensions).
func TestEmptyKeyUsageIsNotAbsent(t *testing.T) {
	nb, na := time.Now().Add(-time.Hour), time.Now().Add(time.Hour)
	root := issue(t, nil, caTemplate("Root", nb, na))

	icaTmpl := caTemplate("Empty-KU CA", nb, na)
	icaTmpl.KeyUsage = 0
	icaTmpl.ExtraExtensions = []pkix.Extension{emptyKeyUsage}
	ica := issue(t, root, icaTmpl)
	if !hasKeyUsage(ica.cert) || ica.cert.KeyUsage != 0 {
		t.Fatalf("fixture: want a present, empty keyUsage; got present=%v bits=%v", hasKeyUsage(ica.cert), ica.cert.KeyUsage)
	}
	leaf := issue(t, ica, leafTemplate("leaf", nb, na))

	_, err := New(Options{Roots: []*x509.Certificate{root.cert}, Intermediates: []*x509.Certificate{ica.cert}}).Validate(leaf.cert)
	var pe *Error
	if !errors.As(err, &pe) || !strings.Contains(pe.Msg, "keyCertSign") {
		t.Fatalf("intermediate with empty keyUsage: got %v, want a keyCertSign failure", err)
	}

	// The same CA without any keyUsage extension is fine.
	icaTmpl2 := caTemplate("No-KU CA", nb, na)
	icaTmpl2.KeyUsage = 0
	ica2 := issue(t, root, icaTmpl2)
	leaf2 := issue(t, ica2, leafTemplate("leaf", nb, na))
	if _, err := New(Options{Roots: []*x509.Certificate{root.cert}, Intermediates: []*x509.Certificate{ica2.cert}}).Validate(leaf2.cert); err != nil {
		t.Fatalf("intermediate without keyUsage: %v", err)
	}

	// A trust anchor with cA=TRUE and an empty keyUsage fails the profile.
	anchorTmpl := caTemplate("Inconsistent Root", nb, na)
	anchorTmpl.KeyUsage = 0
	anchorTmpl.ExtraExtensions = []pkix.Extension{emptyKeyUsage}
	anchor := issue(t, nil, anchorTmpl)
	leaf3 := issue(t, anchor, leafTemplate("leaf", nb, na))
	if _, err := New(Options{Roots: []*x509.Certificate{anchor.cert}, Strict: true}).Validate(leaf3.cert); err == nil {
		t.Fatal("strict: a CA anchor with an empty keyUsage validated")
	}
	if keyUsageLacks(root.cert, x509.KeyUsageCertSign) || !keyUsageLacks(anchor.cert, x509.KeyUsageCRLSign) {
		t.Fatal("keyUsageLacks disagrees with the fixtures")
	}
}

// TestValidityInclusiveToTheSecond: notAfter is encoded to the second and
// the period is inclusive (RFC 5280 §4.1.2.5), so a validation time a few
// milliseconds into the notAfter second is still inside the period, while
// one a second later is not, and notBefore is never stretched
// (limbo rfc5280::validity::notafter-fractional / notbefore-fractional).
func TestValidityInclusiveToTheSecond(t *testing.T) {
	nb := time.Date(2024, 3, 1, 0, 0, 0, 0, time.UTC)
	na := time.Date(2024, 4, 1, 0, 0, 0, 0, time.UTC)
	root := issue(t, nil, caTemplate("Root", nb.Add(-24*time.Hour), na.Add(24*time.Hour)))
	leaf := issue(t, root, leafTemplate("leaf", nb, na))
	for _, tc := range []struct {
		at   time.Time
		want SubIndication // "" = valid
	}{
		{na, ""},
		{na.Add(5 * time.Millisecond), ""},
		{na.Add(999 * time.Millisecond), ""},
		{na.Add(time.Second), OutOfBoundsNoPOE},
		{nb, ""},
		{nb.Add(-5 * time.Millisecond), NotYetValid},
	} {
		for _, strict := range []bool{false, true} {
			_, err := New(Options{Roots: []*x509.Certificate{root.cert}, At: tc.at, Strict: strict}).Validate(leaf.cert)
			var pe *Error
			switch {
			case tc.want == "" && err != nil:
				t.Errorf("at %s (strict=%v): %v", tc.at.Format(time.RFC3339Nano), strict, err)
			case tc.want != "" && (!errors.As(err, &pe) || pe.Sub != tc.want):
				t.Errorf("at %s (strict=%v): got %v, want %s", tc.at.Format(time.RFC3339Nano), strict, err, tc.want)
			}
		}
	}

	// The anchor's own validity (checked in strict mode) follows the same rule.
	anchor := issue(t, nil, caTemplate("Short Root", nb, na))
	leaf2 := issue(t, anchor, leafTemplate("leaf", nb, na))
	if _, err := New(Options{Roots: []*x509.Certificate{anchor.cert}, At: na.Add(5 * time.Millisecond), Strict: true}).Validate(leaf2.cert); err != nil {
		t.Errorf("anchor in its last second: %v", err)
	}
	if _, err := New(Options{Roots: []*x509.Certificate{anchor.cert}, At: na.Add(time.Second), Strict: true}).Validate(leaf2.cert); err == nil {
		t.Error("anchor a second after notAfter validated")
	}
}

// TestEmptyKeyUsageCannotSignCRLs: a CRL issuer whose keyUsage extension is
// present but empty does not assert cRLSign (RFC 5280 §6.3.3 (f)), so its
// CRL cannot establish the status of the certificate.
func TestEmptyKeyUsageCannotSignCRLs(t *testing.T) {
	nb, na := time.Now().Add(-time.Hour), time.Now().Add(time.Hour)
	for _, empty := range []bool{false, true} {
		tmpl := caTemplate("CRL Root", nb, na)
		if empty {
			tmpl.KeyUsage = 0
			tmpl.ExtraExtensions = []pkix.Extension{emptyKeyUsage}
		}
		root := issue(t, nil, tmpl)
		leaf := issue(t, root, leafTemplate("leaf", nb, na))
		// Go refuses to sign a CRL for an issuer without cRLSign; give it a
		// copy that claims the bit, the signature is made with the same key.
		signerCert := *root.cert
		signerCert.KeyUsage = x509.KeyUsageCRLSign
		der, err := x509.CreateRevocationList(rand.Reader, &x509.RevocationList{
			Number: big.NewInt(1), ThisUpdate: nb, NextUpdate: na,
		}, &signerCert, root.key)
		if err != nil {
			t.Fatal(err)
		}
		crl, err := x509.ParseRevocationList(der)
		if err != nil {
			t.Fatal(err)
		}
		_, err = New(Options{Roots: []*x509.Certificate{root.cert}, Revocation: &CRLChecker{CRLs: []*x509.RevocationList{crl}}}).Validate(leaf.cert)
		var pe *Error
		switch {
		case !empty && err != nil:
			t.Errorf("issuer with cRLSign: %v", err)
		case empty && (!errors.As(err, &pe) || !strings.Contains(pe.Msg, "not authorised to sign CRLs")):
			t.Errorf("issuer with an empty keyUsage: got %v, want a CRL signer failure", err)
		}
	}
}

func TestKeyUsageLacksTellsEmptyFromAbsent(t *testing.T) {
	absent := &x509.Certificate{}
	empty := &x509.Certificate{Extensions: []pkix.Extension{{Id: oidKeyUsage, Value: []byte{0x03, 0x01, 0x00}}}}
	signing := &x509.Certificate{
		KeyUsage:   x509.KeyUsageContentCommitment,
		Extensions: []pkix.Extension{{Id: oidKeyUsage, Critical: true, Value: []byte{0x03, 0x02, 0x06, 0x40}}},
	}
	bits := x509.KeyUsageDigitalSignature | x509.KeyUsageContentCommitment
	if KeyUsageLacks(absent, bits) {
		t.Error("a certificate without keyUsage lacks nothing")
	}
	if !KeyUsageLacks(empty, bits) {
		t.Error("an empty keyUsage extension allows no signing")
	}
	if KeyUsageLacks(signing, bits) {
		t.Error("nonRepudiation is enough for a signer")
	}
}
