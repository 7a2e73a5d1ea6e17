// Package cms parses and verifies CMS SignedData (RFC 5652) as used in PDF
// signatures (detached content) and RFC 3161 timestamp tokens (encapsulated
// TSTInfo). It checks message digests, signature values over the DER SET OF
// signed attributes, signer identification (issuer and serial number or
// subject key identifier) and the signing-certificate(-v2) binding. Path
// validation is left to package path.
package cms

import (
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"errors"
	"fmt"
	"math/big"

	"golang.org/x/crypto/cryptobyte"
	cbasn1 "golang.org/x/crypto/cryptobyte/asn1"

	"github.com/thiqa/thiqa/verify/path"
)

// Object identifiers used by CMS signatures in PDFs.
var (
	OIDData                 = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 7, 1}
	OIDSignedData           = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 7, 2}
	OIDTSTInfo              = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 9, 16, 1, 4}
	OIDAttrContentType      = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 9, 3}
	OIDAttrMessageDigest    = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 9, 4}
	OIDAttrSigningTime      = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 9, 5}
	OIDAttrSigningCert      = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 9, 16, 2, 12}
	OIDAttrSigningCertV2    = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 9, 16, 2, 47}
	OIDAttrTimeStampToken   = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 9, 16, 2, 14}
	OIDAttrAdobeRevocation  = asn1.ObjectIdentifier{1, 2, 840, 113583, 1, 1, 8}
	OIDAttrArchiveTSV3      = asn1.ObjectIdentifier{0, 4, 0, 1733, 2, 4}
	OIDRevInfoOCSP          = asn1.ObjectIdentifier{1, 3, 6, 1, 5, 5, 7, 16, 2}
	errTrailing             = errors.New("trailing data")
	maxCMSSize              = 16 << 20
	maxCertsInSignedData    = 256
	maxSignerInfosPerSigned = 16
)

// Attribute is one CMS attribute with its raw DER values.
type Attribute struct {
	Type   asn1.ObjectIdentifier
	Values [][]byte
}

// SignerInfo is one parsed CMS SignerInfo.
type SignerInfo struct {
	Version int
	// Signer identification: IssuerRaw+Serial, or SubjectKeyID.
	IssuerRaw    []byte
	Serial       *big.Int
	SubjectKeyID []byte
	DigestAlg    pkix.AlgorithmIdentifier
	// SignedAttrsDER is the signed attributes re-tagged as a DER SET OF (the
	// bytes the signature covers); nil when there are no signed attributes.
	SignedAttrsDER []byte
	SignedAttrs    []Attribute
	SigAlg         pkix.AlgorithmIdentifier
	Signature      []byte
	UnsignedAttrs  []Attribute
}

// SignedData is a parsed CMS SignedData.
type SignedData struct {
	Version      int
	DigestAlgs   []pkix.AlgorithmIdentifier
	ContentType  asn1.ObjectIdentifier
	HasContent   bool
	Content      []byte
	Certificates []*x509.Certificate
	// CRLs and OCSPs are revocation values carried in the crls field.
	CRLs    [][]byte
	OCSPs   [][]byte
	Signers []SignerInfo
}

// FormatError is a structural defect of the CMS encoding.
type FormatError struct{ Msg string }

// Error implements error.
func (e *FormatError) Error() string { return "cms: " + e.Msg }

func formatErr(format string, a ...any) error {
	return &FormatError{Msg: fmt.Sprintf(format, a...)}
}

// Parse parses a DER ContentInfo holding a SignedData. Trailing zero bytes
// (the padding of a PDF /Contents string) are ignored. BER indefinite
// lengths are normalised to DER first.
func Parse(der []byte) (*SignedData, error) { return ParseWith(der, nil) }

// ParseWith is Parse with the certificates parsed through certs (a cache
// shared across documents; nil parses each one).
func ParseWith(der []byte, certs *path.CertificateCache) (*SignedData, error) {
	if len(der) > maxCMSSize {
		return nil, formatErr("CMS larger than %d bytes", maxCMSSize)
	}
	norm, err := normalizeBER(der)
	if err != nil {
		return nil, formatErr("%v", err)
	}
	in := cryptobyte.String(norm)
	var ci, ctype cryptobyte.String
	if !in.ReadASN1(&ci, cbasn1.SEQUENCE) {
		return nil, formatErr("malformed ContentInfo")
	}
	for _, b := range in {
		if b != 0 {
			return nil, formatErr("trailing data after ContentInfo")
		}
	}
	var oid asn1.ObjectIdentifier
	if !ci.ReadASN1(&ctype, cbasn1.OBJECT_IDENTIFIER) || !readOID(ctype, &oid) {
		return nil, formatErr("malformed content type")
	}
	if !oid.Equal(OIDSignedData) {
		return nil, formatErr("content type %s is not signedData", oid)
	}
	var explicit, sd cryptobyte.String
	if !ci.ReadASN1(&explicit, cbasn1.Tag(0).ContextSpecific().Constructed()) || !explicit.ReadASN1(&sd, cbasn1.SEQUENCE) {
		return nil, formatErr("malformed SignedData wrapper")
	}
	return parseSignedData(sd, certs)
}

func readOID(s cryptobyte.String, out *asn1.ObjectIdentifier) bool {
	full := cryptobyte.NewBuilder(nil)
	full.AddASN1(cbasn1.OBJECT_IDENTIFIER, func(b *cryptobyte.Builder) { b.AddBytes(s) })
	der, err := full.Bytes()
	if err != nil {
		return false
	}
	rest, err := asn1.Unmarshal(der, out)
	return err == nil && len(rest) == 0
}

func readAlg(s *cryptobyte.String) (pkix.AlgorithmIdentifier, bool) {
	var el cryptobyte.String
	if !s.ReadASN1Element(&el, cbasn1.SEQUENCE) {
		return pkix.AlgorithmIdentifier{}, false
	}
	var a pkix.AlgorithmIdentifier
	rest, err := asn1.Unmarshal(el, &a)
	return a, err == nil && len(rest) == 0
}

func parseSignedData(sd cryptobyte.String, certCache *path.CertificateCache) (*SignedData, error) {
	out := &SignedData{}
	var v int64
	if !sd.ReadASN1Integer(&v) {
		return nil, formatErr("malformed SignedData version")
	}
	out.Version = int(v)
	var algs cryptobyte.String
	if !sd.ReadASN1(&algs, cbasn1.SET) {
		return nil, formatErr("malformed digestAlgorithms")
	}
	for !algs.Empty() {
		a, ok := readAlg(&algs)
		if !ok {
			return nil, formatErr("malformed digest algorithm")
		}
		out.DigestAlgs = append(out.DigestAlgs, a)
	}
	var eci, ect cryptobyte.String
	if !sd.ReadASN1(&eci, cbasn1.SEQUENCE) || !eci.ReadASN1(&ect, cbasn1.OBJECT_IDENTIFIER) || !readOID(ect, &out.ContentType) {
		return nil, formatErr("malformed encapContentInfo")
	}
	if !eci.Empty() {
		var exp cryptobyte.String
		if !eci.ReadASN1(&exp, cbasn1.Tag(0).ContextSpecific().Constructed()) {
			return nil, formatErr("malformed eContent")
		}
		content, err := readOctets(exp, 0)
		if err != nil {
			return nil, err
		}
		out.HasContent, out.Content = true, content
	}
	var certs cryptobyte.String
	var has bool
	if !sd.ReadOptionalASN1(&certs, &has, cbasn1.Tag(0).ContextSpecific().Constructed()) {
		return nil, formatErr("malformed certificates")
	}
	for has && !certs.Empty() {
		var el cryptobyte.String
		var tag cbasn1.Tag
		if !certs.ReadAnyASN1Element(&el, &tag) {
			return nil, formatErr("malformed certificate choice")
		}
		if tag != cbasn1.SEQUENCE {
			continue // attribute certificates and other formats are ignored
		}
		if len(out.Certificates) >= maxCertsInSignedData {
			return nil, formatErr("too many certificates")
		}
		c, err := certCache.Parse(el)
		if err != nil {
			continue // an unparsable extra certificate is not fatal by itself
		}
		out.Certificates = append(out.Certificates, c)
	}
	var crls cryptobyte.String
	if !sd.ReadOptionalASN1(&crls, &has, cbasn1.Tag(1).ContextSpecific().Constructed()) {
		return nil, formatErr("malformed crls")
	}
	for has && !crls.Empty() {
		var el cryptobyte.String
		var tag cbasn1.Tag
		if !crls.ReadAnyASN1Element(&el, &tag) {
			return nil, formatErr("malformed revocation choice")
		}
		switch tag {
		case cbasn1.SEQUENCE:
			out.CRLs = append(out.CRLs, el)
		case cbasn1.Tag(1).ContextSpecific().Constructed():
			var body, f cryptobyte.String
			var oid asn1.ObjectIdentifier
			var t cbasn1.Tag
			if el.ReadAnyASN1(&body, &t) && body.ReadASN1(&f, cbasn1.OBJECT_IDENTIFIER) && readOID(f, &oid) && oid.Equal(OIDRevInfoOCSP) {
				var resp cryptobyte.String
				if body.ReadASN1Element(&resp, cbasn1.SEQUENCE) {
					out.OCSPs = append(out.OCSPs, resp)
				}
			}
		}
	}
	var sis cryptobyte.String
	if !sd.ReadASN1(&sis, cbasn1.SET) {
		return nil, formatErr("malformed signerInfos")
	}
	for !sis.Empty() {
		var si cryptobyte.String
		if !sis.ReadASN1(&si, cbasn1.SEQUENCE) {
			return nil, formatErr("malformed SignerInfo")
		}
		if len(out.Signers) >= maxSignerInfosPerSigned {
			return nil, formatErr("too many signers")
		}
		s, err := parseSignerInfo(si)
		if err != nil {
			return nil, err
		}
		out.Signers = append(out.Signers, *s)
	}
	return out, nil
}

// readOctets reads an OCTET STRING, primitive or (BER) constructed, with
// bounded nesting.
func readOctets(s cryptobyte.String, depth int) ([]byte, error) {
	if depth > 16 {
		return nil, formatErr("constructed OCTET STRING nested too deeply")
	}
	var el cryptobyte.String
	var tag cbasn1.Tag
	if !s.ReadAnyASN1(&el, &tag) {
		return nil, formatErr("malformed OCTET STRING")
	}
	switch tag {
	case cbasn1.OCTET_STRING:
		return el, nil
	case cbasn1.OCTET_STRING.Constructed():
		var out []byte
		for !el.Empty() {
			part, err := readOctets(el, depth+1)
			if err != nil {
				return nil, err
			}
			var skip cryptobyte.String
			var t cbasn1.Tag
			el.ReadAnyASN1Element(&skip, &t)
			out = append(out, part...)
		}
		return out, nil
	}
	return nil, formatErr("expected OCTET STRING, found tag %v", tag)
}

func parseAttrs(s cryptobyte.String) ([]Attribute, error) {
	var out []Attribute
	for !s.Empty() {
		var a, t, vals cryptobyte.String
		var at Attribute
		if !s.ReadASN1(&a, cbasn1.SEQUENCE) || !a.ReadASN1(&t, cbasn1.OBJECT_IDENTIFIER) || !readOID(t, &at.Type) || !a.ReadASN1(&vals, cbasn1.SET) {
			return nil, formatErr("malformed attribute")
		}
		for !vals.Empty() {
			var v cryptobyte.String
			var tag cbasn1.Tag
			if !vals.ReadAnyASN1Element(&v, &tag) {
				return nil, formatErr("malformed attribute value")
			}
			at.Values = append(at.Values, v)
		}
		out = append(out, at)
	}
	return out, nil
}

func parseSignerInfo(si cryptobyte.String) (*SignerInfo, error) {
	out := &SignerInfo{}
	var v int64
	if !si.ReadASN1Integer(&v) {
		return nil, formatErr("malformed SignerInfo version")
	}
	out.Version = int(v)
	var sid cryptobyte.String
	var tag cbasn1.Tag
	if !si.ReadAnyASN1(&sid, &tag) {
		return nil, formatErr("malformed signer identifier")
	}
	switch tag {
	case cbasn1.SEQUENCE:
		var issuer cryptobyte.String
		serial := new(big.Int)
		if !sid.ReadASN1Element(&issuer, cbasn1.SEQUENCE) || !sid.ReadASN1Integer(serial) {
			return nil, formatErr("malformed issuerAndSerialNumber")
		}
		out.IssuerRaw, out.Serial = issuer, serial
	case cbasn1.Tag(0).ContextSpecific():
		out.SubjectKeyID = sid
	default:
		return nil, formatErr("unknown signer identifier")
	}
	var ok bool
	if out.DigestAlg, ok = readAlg(&si); !ok {
		return nil, formatErr("malformed digestAlgorithm")
	}
	if si.PeekASN1Tag(cbasn1.Tag(0).ContextSpecific().Constructed()) {
		var el cryptobyte.String
		if !si.ReadASN1Element(&el, cbasn1.Tag(0).ContextSpecific().Constructed()) {
			return nil, formatErr("malformed signedAttrs")
		}
		der := append([]byte{}, el...)
		der[0] = 0x31 // [0] IMPLICIT → SET OF for the signature (RFC 5652 §5.4)
		out.SignedAttrsDER = der
		var body cryptobyte.String
		inner := cryptobyte.String(der)
		if !inner.ReadASN1(&body, cbasn1.SET) {
			return nil, formatErr("malformed signedAttrs")
		}
		attrs, err := parseAttrs(body)
		if err != nil {
			return nil, err
		}
		out.SignedAttrs = attrs
	}
	if out.SigAlg, ok = readAlg(&si); !ok {
		return nil, formatErr("malformed signatureAlgorithm")
	}
	var sig cryptobyte.String
	if !si.ReadASN1(&sig, cbasn1.OCTET_STRING) {
		return nil, formatErr("malformed signature value")
	}
	out.Signature = sig
	if si.PeekASN1Tag(cbasn1.Tag(1).ContextSpecific().Constructed()) {
		var body cryptobyte.String
		if !si.ReadASN1(&body, cbasn1.Tag(1).ContextSpecific().Constructed()) {
			return nil, formatErr("malformed unsignedAttrs")
		}
		attrs, err := parseAttrs(body)
		if err != nil {
			return nil, err
		}
		out.UnsignedAttrs = attrs
	}
	return out, nil
}

// Attr returns the values of the first attribute of type t in attrs.
func Attr(attrs []Attribute, t asn1.ObjectIdentifier) ([][]byte, bool) {
	for _, a := range attrs {
		if a.Type.Equal(t) {
			return a.Values, true
		}
	}
	return nil, false
}

// CountAttr counts attributes of type t (signed attributes must not repeat).
func CountAttr(attrs []Attribute, t asn1.ObjectIdentifier) int {
	n := 0
	for _, a := range attrs {
		if a.Type.Equal(t) {
			n++
		}
	}
	return n
}
