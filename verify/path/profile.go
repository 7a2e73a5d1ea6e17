package path

import (
	"crypto/x509"
	"encoding/asn1"
	"errors"
	"fmt"
	"time"
)

// profileCheck enforces the RFC 5280 §4 rules that a conforming certificate
// must follow, for each certificate of a path (anchor included).
func profileCheck(c *x509.Certificate, isAnchor, isLeaf bool, at time.Time) error {
	if c.SerialNumber == nil || c.SerialNumber.Sign() <= 0 {
		return errors.New("serial number is not positive")
	}
	if len(c.SerialNumber.Bytes()) > 20 {
		return errors.New("serial number longer than 20 octets")
	}
	if len(c.RawIssuer) <= 2 {
		return errors.New("empty issuer name")
	}
	isCA := c.BasicConstraintsValid && c.IsCA
	if c.Version == 3 {
		if !isLeaf || isCA {
			if isCA && len(c.SubjectKeyId) == 0 {
				return errors.New("CA certificate without subjectKeyIdentifier")
			}
		}
		if !(isAnchor && selfIssued(c)) && !selfSigned(c) && len(c.AuthorityKeyId) == 0 {
			return errors.New("certificate without authorityKeyIdentifier")
		}
	}
	if isCA && len(c.RawSubject) <= 2 {
		return errors.New("CA certificate with an empty subject")
	}
	for _, e := range c.Extensions {
		switch e.Id.String() {
		case "2.5.29.19":
			if isCA && !e.Critical {
				return errors.New("CA basicConstraints not critical")
			}
		case "2.5.29.30":
			if !e.Critical {
				return errors.New("nameConstraints not critical")
			}
			if !isCA {
				return errors.New("nameConstraints in a non-CA certificate")
			}
		case "2.5.29.36":
			if !e.Critical {
				return errors.New("policyConstraints not critical")
			}
		case "2.5.29.17":
			if len(c.RawSubject) <= 2 && !e.Critical {
				return errors.New("subjectAltName not critical with an empty subject")
			}
		case "2.5.29.37":
			if len(c.ExtKeyUsage) == 0 && len(c.UnknownExtKeyUsage) == 0 {
				return errors.New("empty extendedKeyUsage")
			}
		}
	}
	for _, d := range c.DNSNames {
		if !validDNSName(d, true) {
			return fmt.Errorf("malformed DNS name %q in subjectAltName", d)
		}
	}
	if hasKeyUsage(c) && c.KeyUsage == 0 {
		return errors.New("key usage extension with no bit set")
	}
	if c.KeyUsage&x509.KeyUsageCertSign != 0 && !isCA {
		return errors.New("keyCertSign without a CA basicConstraints")
	}
	if isCA && keyUsageLacks(c, x509.KeyUsageCertSign) {
		return errors.New("CA certificate whose key usage lacks keyCertSign")
	}
	if isAnchor {
		if c.Version == 3 && !isCA {
			return errors.New("trust anchor is not a CA certificate")
		}
		if t := validityTime(at); t.After(c.NotAfter) || t.Before(c.NotBefore) {
			return fmt.Errorf("trust anchor not valid at %s", at.UTC().Format(time.RFC3339))
		}
		if err := unknownCritical(c, false); err != nil {
			return err
		}
	}
	return nil
}

var oidKeyUsage = asn1.ObjectIdentifier{2, 5, 29, 15}

// hasKeyUsage reports whether c carries a key usage extension. Go leaves
// KeyUsage at zero both when the extension is absent and when it is present
// with no bit asserted, so KeyUsage != 0 cannot tell the two apart.
func hasKeyUsage(c *x509.Certificate) bool {
	for _, e := range c.Extensions {
		if e.Id.Equal(oidKeyUsage) {
			return true
		}
	}
	return false
}

// KeyUsageLacks reports whether c has a key usage extension asserting none
// of bits. An extension present with no bit set lacks them all; an absent
// extension lacks none (any usage is allowed).
func KeyUsageLacks(c *x509.Certificate, bits x509.KeyUsage) bool { return keyUsageLacks(c, bits) }

// keyUsageLacks reports whether c has a key usage extension that does not
// assert bit (RFC 5280 §6.1.4 (n), §6.3.3 (f): the check applies whenever
// the extension is present, including with no bit set at all).
func keyUsageLacks(c *x509.Certificate, bit x509.KeyUsage) bool {
	return hasKeyUsage(c) && c.KeyUsage&bit == 0
}

func selfSigned(c *x509.Certificate) bool {
	return selfIssued(c) && c.CheckSignatureFrom(c) == nil
}
