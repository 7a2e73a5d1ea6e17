package ca

import (
	"bytes"
	"crypto"
	"crypto/sha1"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"fmt"
	"slices"

	"github.com/thiqa/thiqa/policies"
)

// profileExtensions are the extensions an RA's request may ask for when
// they say what the profile puts into the certificate anyway
// (checkRequestedExtensions); SubjectUnsupported leaves them to it.
//
// Real RA clients ask for them without being told: Windows certreq and
// Java keytool put a subjectKeyIdentifier (SHA-1 of the key, RFC 5280
// §4.2.1.2) in every CSR, certreq a keyUsage, step, cfssl and
// BouncyCastle clients often a keyUsage, an extKeyUsage or
// basicConstraints CA:FALSE. Refusing them all would refuse those clients
// for asking for what they get. A value that differs is refused: the CA
// does not change a request without saying so (RFC 4211 §5 needs
// grantedWithMods for a changed certTemplate, which this CA never answers,
// and a PKCS#10 extensionRequest the CA declines would leave the RA
// believing the certificate carries it). Criticality is the profile's.
var profileExtensions = map[string]string{
	"2.5.29.15": "keyUsage", "2.5.29.37": "extKeyUsage", "2.5.29.19": "basicConstraints", "2.5.29.14": "subjectKeyIdentifier",
}

// checkRequestedExtensions refuses, one *policies.SubjectError each, an
// extension of an RA's request (Request.Extensions) among
// profileExtensions whose value is not what the certificate of profile p
// for key pub carries: a keyUsage with other bits, an extKeyUsage with
// other purposes (in any order) or any when the profile has none,
// basicConstraints other than CA:FALSE without a path length, a
// subjectKeyIdentifier that identifies another key. The others are
// SubjectUnsupported's.
func checkRequestedExtensions(p *policies.Profile, pub crypto.PublicKey, exts []pkix.Extension) error {
	var out []*policies.SubjectError
	for _, e := range exts {
		name, ok := profileExtensions[e.Id.String()]
		if !ok {
			continue
		}
		differs, err := requestedDiffers(p, pub, name, e.Value)
		if err != nil {
			return err
		}
		if differs != "" {
			out = append(out, &policies.SubjectError{Field: name, Reason: fmt.Sprintf(
				"the request's %s extension is not the one profile %s puts in the certificate (%s): "+
					"leave it out of the request, or ask for exactly the profile's", name, p.Name, differs)})
		}
	}
	if len(out) == 0 {
		return nil
	}
	return policies.SubjectErrors(out)
}

// requestedDiffers says how the requested extension name's value differs
// from the certificate's ("" when it does not).
func requestedDiffers(p *policies.Profile, pub crypto.PublicKey, name string, value []byte) (string, error) {
	switch name {
	case "keyUsage":
		var bits asn1.BitString
		if rest, err := asn1.Unmarshal(value, &bits); err != nil || len(rest) > 0 {
			return "malformed", nil
		}
		var ku x509.KeyUsage
		for i := range bits.BitLength {
			if bits.At(i) == 0 {
				continue
			}
			if i > 8 {
				return fmt.Sprintf("bit %d set", i), nil
			}
			ku |= 1 << i
		}
		if ku != p.KeyUsage {
			return fmt.Sprintf("bits %09b, the profile's %09b", ku, p.KeyUsage), nil
		}
	case "extKeyUsage":
		var asked []asn1.ObjectIdentifier
		if rest, err := asn1.Unmarshal(value, &asked); err != nil || len(rest) > 0 {
			return "malformed", nil
		}
		if len(asked) == 0 {
			// KeyPurposeId SIZE (1..MAX) (RFC 5280 §4.2.1.12): an empty
			// one would pass as the "same" as a profile with none, whose
			// certificate has no extKeyUsage at all.
			return "malformed: no purpose", nil
		}
		var profile []asn1.ObjectIdentifier
		if ext, ok, err := extKeyUsageExtension(p); err != nil {
			return "", err
		} else if !ok {
			return "the certificate carries no extKeyUsage", nil
		} else if _, err := asn1.Unmarshal(ext.Value, &profile); err != nil {
			return "", fmt.Errorf("decoding the profile's extendedKeyUsage: %w", err)
		}
		if !sameOIDs(asked, profile) {
			return fmt.Sprintf("purposes %v, the profile's %v", asked, profile), nil
		}
	case "basicConstraints":
		return basicConstraintsDiffers(value), nil
	case "subjectKeyIdentifier":
		var id []byte
		if rest, err := asn1.Unmarshal(value, &id); err != nil || len(rest) > 0 {
			return "malformed", nil
		}
		ski, err := subjectKeyID(pub)
		if err != nil {
			return "", err
		}
		sha1ID, err := sha1KeyID(pub)
		if err != nil {
			return "", err
		}
		// The certificate carries the CA's identifier of the key (SHA-256,
		// RFC 7093 §2); one by RFC 5280's SHA-1 method names the same key.
		if !bytes.Equal(id, ski) && !bytes.Equal(id, sha1ID) {
			return "it identifies another key than the request's", nil
		}
	}
	return "", nil
}

// basicConstraintsDiffers says how a requested basicConstraints value
// differs from the certificate's CA:FALSE without a path length: only an
// empty SEQUENCE (DER) or one holding cA FALSE, the default spelt out
// (BER, which older BouncyCastle writes; it says the same), is the
// certificate's. Read element by element: encoding/asn1 would take a
// pathLenConstraint of -1 for "none" and skip elements after the ones it
// knows.
func basicConstraintsDiffers(value []byte) string {
	var elems []asn1.RawValue
	if rest, err := asn1.Unmarshal(value, &elems); err != nil || len(rest) > 0 {
		return "malformed"
	}
	isBool := func(e asn1.RawValue) bool {
		return e.Class == asn1.ClassUniversal && e.Tag == asn1.TagBoolean && !e.IsCompound && len(e.Bytes) == 1
	}
	switch {
	case len(elems) == 0, len(elems) == 1 && isBool(elems[0]) && elems[0].Bytes[0] == 0x00:
		return ""
	case isBool(elems[0]) && elems[0].Bytes[0] == 0xff,
		slices.ContainsFunc(elems, func(e asn1.RawValue) bool { return e.Class == asn1.ClassUniversal && e.Tag == asn1.TagInteger }):
		return "a CA or a path length; the certificate says CA:FALSE"
	}
	return "malformed"
}

// sameOIDs says whether a and b hold the same OIDs, in any order.
func sameOIDs(a, b []asn1.ObjectIdentifier) bool {
	if len(a) != len(b) {
		return false
	}
	for _, o := range a {
		if !slices.ContainsFunc(b, o.Equal) {
			return false
		}
	}
	for _, o := range b {
		if !slices.ContainsFunc(a, o.Equal) {
			return false
		}
	}
	return true
}

// sha1KeyID is the key identifier of RFC 5280 §4.2.1.2 method (1): the
// SHA-1 of the subjectPublicKey bits, as Windows and Java put in a CSR.
func sha1KeyID(pub crypto.PublicKey) ([]byte, error) {
	bits, err := subjectPublicKeyBits(pub)
	if err != nil {
		return nil, err
	}
	h := sha1.Sum(bits) // an identifier, not a signature
	return h[:], nil
}
