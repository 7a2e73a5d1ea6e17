package csc

import (
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/hex"
	"fmt"
	"strings"
)

// dnNames are the short names an RFC 4514 string gives attribute types:
// those crypto/x509 knows, and the X.520/PKCS #9 ones the CA's profiles
// and other CAs' certificates carry (EN 319 412-2 and -3), which
// pkix.Name.String prints as a dotted OID with the hex of the DER value.
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

// goNamed are the types pkix.Name.String names itself, whatever the value.
var goNamed = map[string]bool{
	"2.5.4.6": true, "2.5.4.10": true, "2.5.4.11": true, "2.5.4.3": true, "2.5.4.5": true,
	"2.5.4.7": true, "2.5.4.8": true, "2.5.4.9": true, "2.5.4.17": true,
}

// distinguishedName is n as a UTF-8 RFC 4514 string, as CSC API v2 wants
// issuerDN and subjectDN: the attributes in the order and with the escaping
// of pkix.Name.String, but every attribute type in dnNames by its short
// name (surname SN=…, not 2.5.4.4=#13…). An attribute of another type, or
// whose value is not a string, stays a dotted OID with the hex of its DER
// value, as RFC 4514 section 2.4 says.
func distinguishedName(n pkix.Name) string {
	// The sequence pkix.Name.String prints: the attributes it does not
	// parse into fields first (so last in the string), then the fields.
	var rdns pkix.RDNSequence
	if n.ExtraNames == nil {
		for _, atv := range n.Names {
			t := atv.Type
			if len(t) == 4 && t[0] == 2 && t[1] == 5 && t[2] == 4 {
				switch t[3] {
				case 3, 5, 6, 7, 8, 9, 10, 11, 17:
					continue
				}
			}
			rdns = append(rdns, pkix.RelativeDistinguishedNameSET{atv})
		}
	}
	rdns = append(rdns, n.ToRDNSequence()...)
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
			if _, isString := atv.Value.(string); named && !isString && !goNamed[oid] {
				named = false // a short name for a string value only
			}
			if !named {
				if der, err := asn1.Marshal(atv.Value); err == nil {
					b.WriteString(oid + "=#" + hex.EncodeToString(der))
					continue
				}
				name = oid
			}
			b.WriteString(name + "=" + escapeDNValue(fmt.Sprint(atv.Value)))
		}
	}
	return b.String()
}

// escapeDNValue escapes an attribute value as pkix.Name.String does
// (RFC 4514 section 2.4).
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
		}
		if escape {
			b.WriteByte('\\')
		}
		b.WriteRune(c)
	}
	return b.String()
}
