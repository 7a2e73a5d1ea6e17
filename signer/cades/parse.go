package cades

import (
	"crypto/x509"
	"encoding/asn1"
	"errors"
	"fmt"
)

// ErrMalformed reports CMS that cannot be read.
var ErrMalformed = errors.New("cades: malformed CMS")

type looseSignedData struct {
	Version          int
	DigestAlgorithms asn1.RawValue
	EncapContentInfo asn1.RawValue
	Certificates     asn1.RawValue   `asn1:"optional,tag:0"`
	CRLs             asn1.RawValue   `asn1:"optional,tag:1"`
	SignerInfos      []asn1.RawValue `asn1:"set"`
}

type looseSignerInfo struct {
	Version            int
	SID                asn1.RawValue
	DigestAlgorithm    asn1.RawValue
	SignedAttrs        asn1.RawValue `asn1:"optional,tag:0"`
	SignatureAlgorithm asn1.RawValue
	Signature          []byte
	UnsignedAttrs      asn1.RawValue `asn1:"optional,tag:1"`
}

// Parsed is what the signer needs to know about an existing CMS signature
// (one made elsewhere included) to gather validation data for it.
type Parsed struct {
	// Certificates holds the certificates the SignedData carries that
	// crypto/x509 can parse.
	Certificates []*x509.Certificate
	// RawCertificates holds every certificate's DER, parsable or not.
	RawCertificates [][]byte
	// Timestamps holds the signature-time-stamp tokens of its signers.
	Timestamps [][]byte
}

// Parse reads the certificates and signature time-stamps of a DER CMS
// ContentInfo holding SignedData. Trailing bytes (PDF /Contents padding)
// are ignored.
func Parse(der []byte) (*Parsed, error) {
	return ParseWith(der, x509.ParseCertificate)
}

// ParseWith is Parse with the certificates parsed by parseCert (which may
// remember certificates it has parsed before).
func ParseWith(der []byte, parseCert func([]byte) (*x509.Certificate, error)) (*Parsed, error) {
	if len(der) > 1 && der[1] == 0x80 {
		d, err := berToDER(der)
		if err != nil {
			return nil, fmt.Errorf("%w: %v", ErrMalformed, err)
		}
		der = d
	}
	var ci contentInfo
	if _, err := asn1.Unmarshal(der, &ci); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	if !ci.ContentType.Equal(OIDSignedData) {
		return nil, fmt.Errorf("%w: content type %v", ErrMalformed, ci.ContentType)
	}
	var sd looseSignedData
	if _, err := asn1.Unmarshal(ci.Content.Bytes, &sd); err != nil {
		return nil, fmt.Errorf("%w: SignedData: %v", ErrMalformed, err)
	}
	p := &Parsed{}
	if len(sd.Certificates.Bytes) > 0 {
		rest := sd.Certificates.Bytes
		for len(rest) > 0 {
			var raw asn1.RawValue
			var err error
			rest, err = asn1.Unmarshal(rest, &raw)
			if err != nil {
				return nil, fmt.Errorf("%w: certificates: %v", ErrMalformed, err)
			}
			if raw.Class != asn1.ClassUniversal || raw.Tag != asn1.TagSequence {
				continue // attribute certificates and others
			}
			p.RawCertificates = append(p.RawCertificates, raw.FullBytes)
			if c, err := parseCert(raw.FullBytes); err == nil {
				p.Certificates = append(p.Certificates, c)
			}
		}
	}
	for _, raw := range sd.SignerInfos {
		var si looseSignerInfo
		if _, err := asn1.Unmarshal(raw.FullBytes, &si); err != nil {
			return nil, fmt.Errorf("%w: SignerInfo: %v", ErrMalformed, err)
		}
		rest := si.UnsignedAttrs.Bytes
		for len(rest) > 0 {
			var a attribute
			var err error
			if rest, err = asn1.Unmarshal(rest, &a); err != nil {
				return nil, fmt.Errorf("%w: unsigned attribute: %v", ErrMalformed, err)
			}
			if !a.Type.Equal(OIDTimeStampToken) {
				continue
			}
			vals := a.Values.Bytes
			for len(vals) > 0 {
				var v asn1.RawValue
				if vals, err = asn1.Unmarshal(vals, &v); err != nil {
					return nil, fmt.Errorf("%w: time-stamp token: %v", ErrMalformed, err)
				}
				p.Timestamps = append(p.Timestamps, v.FullBytes)
			}
		}
	}
	return p, nil
}
