package csc

import (
	"crypto/x509/pkix"
	"encoding/asn1"
	"testing"
)

// parsedName is the pkix.Name crypto/x509 makes of a certificate's name
// with these RDNs (one attribute each, in this order).
func parsedName(t *testing.T, atvs ...pkix.AttributeTypeAndValue) pkix.Name {
	t.Helper()
	var seq pkix.RDNSequence
	for _, a := range atvs {
		seq = append(seq, pkix.RelativeDistinguishedNameSET{a})
	}
	der, err := asn1.Marshal(seq)
	if err != nil {
		t.Fatal(err)
	}
	var back pkix.RDNSequence
	if _, err := asn1.Unmarshal(der, &back); err != nil {
		t.Fatal(err)
	}
	var n pkix.Name
	n.FillFromRDNSequence(&back)
	return n
}

// credentials/info's subjectDN and issuerDN (CSC API v2: RFC 4514 strings)
// name surname, givenName and organizationIdentifier by their short names,
// as a relying party reads them, instead of pkix.Name.String's
// "2.5.4.4=#13…"; the rest of the string (pkix.Name.String's order,
// escaping and hex for a type without a short name) is as before.
func TestDistinguishedName(t *testing.T) {
	oid := func(arcs ...int) asn1.ObjectIdentifier { return asn1.ObjectIdentifier(arcs) }
	citizen := parsedName(t,
		pkix.AttributeTypeAndValue{Type: oid(2, 5, 4, 6), Value: "OM"},
		pkix.AttributeTypeAndValue{Type: oid(2, 5, 4, 5), Value: "IDCOM-12345678"},
		pkix.AttributeTypeAndValue{Type: oid(2, 5, 4, 42), Value: "Aisha"},
		pkix.AttributeTypeAndValue{Type: oid(2, 5, 4, 4), Value: "Al Balushi, Jr"},
		pkix.AttributeTypeAndValue{Type: oid(2, 5, 4, 3), Value: "Aisha Al Balushi"},
	)
	if got, want := distinguishedName(citizen), `SERIALNUMBER=IDCOM-12345678,CN=Aisha Al Balushi,C=OM,SN=Al Balushi\, Jr,GN=Aisha`; got != want {
		t.Errorf("citizen: %s, want %s (Go said %s)", got, want, citizen.String())
	}
	seal := parsedName(t,
		pkix.AttributeTypeAndValue{Type: oid(2, 5, 4, 6), Value: "OM"},
		pkix.AttributeTypeAndValue{Type: oid(2, 5, 4, 10), Value: "Ministry of Health"},
		pkix.AttributeTypeAndValue{Type: oid(2, 5, 4, 97), Value: "NTROM-1234567"},
		pkix.AttributeTypeAndValue{Type: oid(2, 5, 4, 3), Value: "Ministry of Health Seal"},
		pkix.AttributeTypeAndValue{Type: oid(1, 2, 3, 4), Value: "x"}, // no short name: stays hex
	)
	if got, want := distinguishedName(seal), `CN=Ministry of Health Seal,O=Ministry of Health,C=OM,1.2.3.4=#130178,organizationIdentifier=NTROM-1234567`; got != want {
		t.Errorf("seal: %s, want %s (Go said %s)", got, want, seal.String())
	}
	// Only the types Go prints itself: the same string as before.
	ca := parsedName(t,
		pkix.AttributeTypeAndValue{Type: oid(2, 5, 4, 6), Value: "OM"},
		pkix.AttributeTypeAndValue{Type: oid(2, 5, 4, 10), Value: "Thiqa"},
		pkix.AttributeTypeAndValue{Type: oid(2, 5, 4, 3), Value: " #Root+CA; \"x\" "},
	)
	if got, want := distinguishedName(ca), ca.String(); got != want {
		t.Errorf("CA: %s, want %s", got, want)
	}
}
