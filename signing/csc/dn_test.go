package csc

import (
	"crypto/x509/pkix"
	"encoding/asn1"
	"testing"
)

// rawName is the DER RDNSequence of these RDNs, in this order, as a
// certificate carries it, and the pkix.Name crypto/x509 makes of it.
func rawName(t *testing.T, rdns ...pkix.RelativeDistinguishedNameSET) ([]byte, pkix.Name) {
	t.Helper()
	der, err := asn1.Marshal(pkix.RDNSequence(rdns))
	if err != nil {
		t.Fatal(err)
	}
	var back pkix.RDNSequence
	if _, err := asn1.Unmarshal(der, &back); err != nil {
		t.Fatal(err)
	}
	var n pkix.Name
	n.FillFromRDNSequence(&back)
	return der, n
}

// one is an RDN of one attribute.
func one(oid asn1.ObjectIdentifier, v any) pkix.RelativeDistinguishedNameSET {
	return pkix.RelativeDistinguishedNameSET{{Type: oid, Value: v}}
}

var (
	oidC, oidO, oidOU   = asn1.ObjectIdentifier{2, 5, 4, 6}, asn1.ObjectIdentifier{2, 5, 4, 10}, asn1.ObjectIdentifier{2, 5, 4, 11}
	oidCN, oidSerial    = asn1.ObjectIdentifier{2, 5, 4, 3}, asn1.ObjectIdentifier{2, 5, 4, 5}
	oidSN, oidGN, oidOI = asn1.ObjectIdentifier{2, 5, 4, 4}, asn1.ObjectIdentifier{2, 5, 4, 42}, asn1.ObjectIdentifier{2, 5, 4, 97}
)

// credentials/info's subjectDN and issuerDN (CSC API v2: RFC 4514 strings)
// are the certificate's own names in RFC 4514 order: its RDNs last first,
// a multi-valued RDN's attributes joined by '+', as relying parties
// compare them; not pkix.Name.String's order, which sorts the attributes
// by type whatever the certificate says and splits a multi-valued RDN.
// Surname, givenName and organizationIdentifier go by their short names;
// a type without one is its OID with the hex of its DER value.
func TestDistinguishedName(t *testing.T) {
	for _, c := range []struct {
		name string
		rdns []pkix.RelativeDistinguishedNameSET
		want string
	}{
		{"citizen", []pkix.RelativeDistinguishedNameSET{
			one(oidC, "OM"), one(oidSerial, "IDCOM-12345678"), one(oidGN, "Aisha"), one(oidSN, "Al Balushi, Jr"), one(oidCN, "Aisha Al Balushi"),
		}, `CN=Aisha Al Balushi,SN=Al Balushi\, Jr,GN=Aisha,SERIALNUMBER=IDCOM-12345678,C=OM`},
		// DER sorts a SET OF by encoding: the certificate holds the
		// serial number first, and so does the string.
		{"multi-valued RDN first in the certificate", []pkix.RelativeDistinguishedNameSET{
			{{Type: oidCN, Value: "Salim Al Harthy"}, {Type: oidSerial, Value: "IDCOM-7"}},
			one(oidOU, "Citizens"), one(oidO, "Thiqa"), one(oidC, "OM"),
		}, `C=OM,O=Thiqa,OU=Citizens,SERIALNUMBER=IDCOM-7+CN=Salim Al Harthy`},
		{"seal", []pkix.RelativeDistinguishedNameSET{
			one(oidC, "OM"), one(oidO, "Ministry of Health"), one(oidOI, "NTROM-1234567"), one(oidCN, "Ministry of Health Seal"),
			one(asn1.ObjectIdentifier{1, 2, 3, 4}, "x"), // no short name: hex
			one(oidO, 7), // not a string: hex
		}, `2.5.4.10=#020107,1.2.3.4=#130178,CN=Ministry of Health Seal,organizationIdentifier=NTROM-1234567,O=Ministry of Health,C=OM`},
		{"escaping", []pkix.RelativeDistinguishedNameSET{
			one(oidC, "OM"), one(oidO, "Thiqa"), one(oidCN, " #Root+CA; \"x\" "),
		}, `CN=\ #Root\+CA\; \"x\"\ ,O=Thiqa,C=OM`},
	} {
		der, n := rawName(t, c.rdns...)
		if got := distinguishedName(der, n); got != c.want {
			t.Errorf("%s: %s, want %s (Go's order: %s)", c.name, got, c.want, n.String())
		}
	}
	if got := distinguishedName([]byte{0x30, 0x03, 0x01}, pkix.Name{CommonName: "x"}); got != "CN=x" {
		t.Errorf("a name that does not parse: %q, want the parsed name's string", got)
	}
}
