package ca

import (
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"fmt"

	"github.com/thiqa/thiqa/policies"
)

// qcStatement is RFC 3739 QCStatement ::= SEQUENCE { statementId OID, statementInfo ANY OPTIONAL }.
type qcStatement struct {
	ID   asn1.ObjectIdentifier
	Info asn1.RawValue `asn1:"optional"`
}

// pdsLocation is EN 319 412-5 PdsLocation ::= SEQUENCE { url IA5String, language PrintableString (SIZE(2)) }.
type pdsLocation struct {
	URL      string `asn1:"ia5"`
	Language string `asn1:"printable"`
}

// semanticsInformation is RFC 3739 SemanticsInformation with only the identifier.
type semanticsInformation struct {
	Identifier asn1.ObjectIdentifier
}

// qcStatementsExtension encodes the non-critical id-pe-qcStatements
// extension (RFC 3739 §3.2.6, EN 319 412-5 §4), or reports false when the
// profile has no statement.
func qcStatementsExtension(q policies.QCStatements) (pkix.Extension, bool, error) {
	if q.Empty() {
		return pkix.Extension{}, false, nil
	}
	var sts []qcStatement
	add := func(id string, info any) error {
		st := qcStatement{ID: policies.MustOID(id)}
		if info != nil {
			b, err := asn1.Marshal(info)
			if err != nil {
				return fmt.Errorf("encoding QC statement %s: %w", id, err)
			}
			st.Info = asn1.RawValue{FullBytes: b}
		}
		sts = append(sts, st)
		return nil
	}
	var err error
	if q.Semantics != nil {
		err = add(policies.OIDQcsPkixQCSyntaxV2, semanticsInformation{Identifier: q.Semantics})
	}
	if err == nil && q.Compliance {
		err = add(policies.OIDQcCompliance, nil)
	}
	if err == nil && q.SSCD {
		err = add(policies.OIDQcSSCD, nil)
	}
	if err == nil && len(q.Types) > 0 {
		err = add(policies.OIDQcType, q.Types) // QcType ::= SEQUENCE OF OBJECT IDENTIFIER
	}
	if err == nil && len(q.PDS) > 0 {
		locs := make([]pdsLocation, len(q.PDS))
		for i, l := range q.PDS {
			locs[i] = pdsLocation{URL: l.URL, Language: l.Language}
		}
		err = add(policies.OIDQcPDS, locs)
	}
	if err != nil {
		return pkix.Extension{}, false, err
	}
	v, err := asn1.Marshal(sts)
	if err != nil {
		return pkix.Extension{}, false, fmt.Errorf("encoding qcStatements: %w", err)
	}
	return pkix.Extension{Id: policies.MustOID(policies.OIDExtQCStatements), Value: v}, true, nil
}

// extKeyUsageOID returns the OID of Go's extended key usage u (RFC 5280 §4.2.1.12).
func extKeyUsageOID(u x509.ExtKeyUsage) (asn1.ObjectIdentifier, error) {
	switch u {
	case x509.ExtKeyUsageServerAuth:
		return asn1.ObjectIdentifier{1, 3, 6, 1, 5, 5, 7, 3, 1}, nil
	case x509.ExtKeyUsageClientAuth:
		return asn1.ObjectIdentifier{1, 3, 6, 1, 5, 5, 7, 3, 2}, nil
	case x509.ExtKeyUsageCodeSigning:
		return asn1.ObjectIdentifier{1, 3, 6, 1, 5, 5, 7, 3, 3}, nil
	case x509.ExtKeyUsageEmailProtection:
		return asn1.ObjectIdentifier{1, 3, 6, 1, 5, 5, 7, 3, 4}, nil
	case x509.ExtKeyUsageTimeStamping:
		return asn1.ObjectIdentifier{1, 3, 6, 1, 5, 5, 7, 3, 8}, nil
	case x509.ExtKeyUsageOCSPSigning:
		return asn1.ObjectIdentifier{1, 3, 6, 1, 5, 5, 7, 3, 9}, nil
	}
	return nil, fmt.Errorf("extended key usage %d has no OID here", u)
}

// extKeyUsageExtension encodes extendedKeyUsage with the profile's
// criticality (Go's own encoder always marks it non-critical; EN 319 422
// wants it critical for time-stamping units).
func extKeyUsageExtension(p *policies.Profile) (pkix.Extension, bool, error) {
	var oids []asn1.ObjectIdentifier
	for _, u := range p.ExtKeyUsage {
		o, err := extKeyUsageOID(u)
		if err != nil {
			return pkix.Extension{}, false, err
		}
		oids = append(oids, o)
	}
	oids = append(oids, p.ExtKeyUsageOIDs...)
	if len(oids) == 0 {
		return pkix.Extension{}, false, nil
	}
	v, err := asn1.Marshal(oids)
	if err != nil {
		return pkix.Extension{}, false, fmt.Errorf("encoding extendedKeyUsage: %w", err)
	}
	return pkix.Extension{Id: asn1.ObjectIdentifier{2, 5, 29, 37}, Critical: p.ExtKeyUsageCritical, Value: v}, true, nil
}

// ocspNoCheckExtension is id-pkix-ocsp-nocheck with a NULL value (RFC 6960 §4.2.2.2.1).
func ocspNoCheckExtension() pkix.Extension {
	return pkix.Extension{Id: policies.MustOID(policies.OIDExtOCSPNoCheck), Value: []byte{0x05, 0x00}}
}

// policyOIDs converts the profile's policies for x509.Certificate.Policies.
func policyOIDs(p *policies.Profile) ([]x509.OID, error) {
	out := make([]x509.OID, 0, len(p.Policies))
	for _, o := range p.Policies {
		ints := make([]uint64, len(o))
		for i, a := range o {
			ints[i] = uint64(a)
		}
		x, err := x509.OIDFromInts(ints)
		if err != nil {
			return nil, fmt.Errorf("policy %s: %w", o, err)
		}
		out = append(out, x)
	}
	return out, nil
}

// marshalName encodes the validated subject as Go will in the TBS.
func marshalName(s policies.Subject) ([]byte, error) {
	b, err := asn1.Marshal(s.Name().ToRDNSequence())
	if err != nil {
		return nil, fmt.Errorf("encoding subject: %w", err)
	}
	return b, nil
}
