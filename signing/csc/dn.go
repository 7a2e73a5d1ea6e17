package csc

import (
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/hex"
	"strings"
	"unicode/utf16"
	"unicode/utf8"
)

// dnNames are the short names an RFC 4514 string gives attribute types:
// those crypto/x509 knows, and the X.520/PKCS #9 ones the CA's profiles
// and other CAs' certificates carry (EN 319 412-2 and -3).
var dnNames = map[string]string{
	"2.5.4.6":                    "C",
	"2.5.4.10":                   "O",
	"2.5.4.11":                   "OU",
	"2.5.4.3":                    "CN",
	"2.5.4.5":                    "SERIALNUMBER",
	"2.5.4.7":                    "L",
	"2.5.4.8":                    "ST",
	"2.5.4.9":                    "STREET",
	"2.5.4.17":                   "POSTALCODE",
	"2.5.4.4":                    "SN",
	"2.5.4.42":                   "GN",
	"2.5.4.43":                   "initials",
	"2.5.4.44":                   "generationQualifier",
	"2.5.4.12":                   "title",
	"2.5.4.46":                   "dnQualifier",
	"2.5.4.65":                   "pseudonym",
	"2.5.4.97":                   "organizationIdentifier",
	"0.9.2342.19200300.100.1.25": "DC",
	"0.9.2342.19200300.100.1.1":  "UID",
	"1.2.840.113549.1.9.1":       "emailAddress",
}

// rawATV is one attribute of a name as the certificate encodes it: the
// value kept as its DER, to be printed as a string or as hex.
type rawATV struct {
	Type  asn1.ObjectIdentifier
	Value asn1.RawValue
}

// rawRDNSET is one RDN: a SET OF attributes (encoding/asn1 reads a slice
// type whose name ends in SET as a SET).
type rawRDNSET []rawATV

// distinguishedName is the certificate name raw (its RawSubject or
// RawIssuer, a DER RDNSequence) as a UTF-8 RFC 4514 string, as CSC API v2
// wants issuerDN and subjectDN and as relying parties compare them: the
// RDNs in the reverse of their order in the certificate (RFC 4514 section
// 2.1: the last one first), the attributes of a multi-valued RDN joined by
// '+' in their encoded order, each type in dnNames by its short name
// (surname SN=…), and an attribute of another type, or whose value is not
// a string, as a dotted OID with the hex of its DER value (section 2.4).
// pkix.Name.String instead prints the attributes in an order of Go's own,
// whatever the certificate says. When raw does not parse (crypto/x509
// parsed it, so never for a certificate's name), it returns
// fallback.String().
func distinguishedName(raw []byte, fallback pkix.Name) string {
	var rdns []rawRDNSET
	rest, err := asn1.Unmarshal(raw, &rdns)
	if err != nil || len(rest) != 0 {
		return fallback.String()
	}
	var b strings.Builder
	for i := len(rdns) - 1; i >= 0; i-- {
		if i < len(rdns)-1 {
			b.WriteByte(',')
		}
		for j, atv := range rdns[i] {
			if j > 0 {
				b.WriteByte('+')
			}
			oid := atv.Type.String()
			name, named := dnNames[oid]
			v, isString := dnString(atv.Value)
			if !named || !isString {
				b.WriteString(oid + "=#" + hex.EncodeToString(atv.Value.FullBytes))
				continue
			}
			b.WriteString(name + "=" + escapeDNValue(v))
		}
	}
	return b.String()
}

// dnString returns the text of a directory string value (UTF8String,
// PrintableString, IA5String, NumericString, BMPString) and true; false
// for any other value (RFC 4514 prints it as hex).
func dnString(v asn1.RawValue) (string, bool) {
	if v.Class != asn1.ClassUniversal || v.IsCompound {
		return "", false
	}
	switch v.Tag {
	case asn1.TagUTF8String:
		if !utf8.Valid(v.Bytes) {
			return "", false
		}
		return string(v.Bytes), true
	case asn1.TagPrintableString, asn1.TagIA5String, asn1.TagNumericString:
		for _, c := range v.Bytes {
			if c >= utf8.RuneSelf {
				return "", false
			}
		}
		return string(v.Bytes), true
	case asn1.TagBMPString:
		if len(v.Bytes)%2 != 0 {
			return "", false
		}
		u := make([]uint16, 0, len(v.Bytes)/2)
		for k := 0; k < len(v.Bytes); k += 2 {
			u = append(u, uint16(v.Bytes[k])<<8|uint16(v.Bytes[k+1]))
		}
		return string(utf16.Decode(u)), true
	}
	return "", false
}

// escapeDNValue escapes an attribute value as RFC 4514 section 2.4 says
// (as pkix.Name.String does, and a NUL as \00).
func escapeDNValue(v string) string {
	var b strings.Builder
	for k, c := range v {
		escape := false
		switch c {
		case ',', '+', '"', '\\', '<', '>', ';':
			escape = true
		case ' ':
			escape = k == 0 || k == len(v)-1
		case '#':
			escape = k == 0
		case 0:
			b.WriteString(`\00`)
			continue
		}
		if escape {
			b.WriteByte('\\')
		}
		b.WriteRune(c)
	}
	return b.String()
}
