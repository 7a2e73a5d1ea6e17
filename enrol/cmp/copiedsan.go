package cmp

import (
	"bytes"
	"crypto/x509"
	"encoding/asn1"
	"fmt"
	"net"
	"slices"
)

// signerNames names the names of a certTemplate's subjectAltName (value,
// GeneralNames) other than email addresses that the signer's certificate
// names too, each as "dNSName ra.example.om", in the template's order:
// openssl cmp fills an ir's or cr's template with its -cert's
// subjectAltName unless given -sans or -san_nodefault, so a template
// naming the RA's own host was copied, not asked for. Emails are compared
// apart, case aside (raSubject). rest is value without those names, for
// SubjectUnsupported to refuse the template's other names only: a copied
// name is refused once, saying where it came from. Nil names and value
// itself when the signer is unknown, either value cannot be read
// (SubjectUnsupported says so) or nothing is shared.
func signerNames(value []byte, signer *x509.Certificate) (names []string, rest []byte) {
	if signer == nil {
		return nil, value
	}
	var own []byte
	for _, e := range signer.Extensions {
		if e.Id.Equal(oidSubjectAltName) {
			own = e.Value
		}
	}
	var asked, theirs []asn1.RawValue
	if trail, err := asn1.Unmarshal(value, &asked); err != nil || len(trail) > 0 {
		return nil, value
	}
	if trail, err := asn1.Unmarshal(own, &theirs); err != nil || len(trail) > 0 {
		return nil, value
	}
	var others []asn1.RawValue
	for _, n := range asked {
		if n.Class == asn1.ClassContextSpecific && n.Tag != 1 &&
			slices.ContainsFunc(theirs, func(o asn1.RawValue) bool { return bytes.Equal(o.FullBytes, n.FullBytes) }) {
			names = append(names, describeName(n))
			continue
		}
		others = append(others, n)
	}
	if len(names) == 0 {
		return nil, value
	}
	if others == nil {
		others = []asn1.RawValue{}
	}
	rest, err := asn1.Marshal(others)
	if err != nil {
		return nil, value
	}
	return names, rest
}

// describeName shows one GeneralName for a refusal: its type and, for a
// dNSName, URI or IP address, its value.
func describeName(n asn1.RawValue) string {
	switch {
	case n.Tag == 2 && !n.IsCompound:
		return fmt.Sprintf("dNSName %q", n.Bytes)
	case n.Tag == 6 && !n.IsCompound:
		return fmt.Sprintf("uniformResourceIdentifier %q", n.Bytes)
	case n.Tag == 7 && !n.IsCompound && (len(n.Bytes) == net.IPv4len || len(n.Bytes) == net.IPv6len):
		return "iPAddress " + net.IP(n.Bytes).String()
	}
	return fmt.Sprintf("name of type [%d]", n.Tag)
}
