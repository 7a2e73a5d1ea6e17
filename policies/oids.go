package policies

import (
	"encoding/asn1"
	"fmt"
	"strconv"
	"strings"
)

// Object identifiers of the certificate profiles, each checked against the
// standard that defines it (section given).
const (
	// OIDPolicyQCPn is QCP-n, EN 319 411-2 §5.3 a): qualified certificate for a natural person.
	OIDPolicyQCPn = "0.4.0.194112.1.0"
	// OIDPolicyQCPl is QCP-l, EN 319 411-2 §5.3 b): qualified certificate for a legal person.
	OIDPolicyQCPl = "0.4.0.194112.1.1"
	// OIDPolicyQCPnQSCD is QCP-n-qscd, EN 319 411-2 §5.3 c): natural person, private key in a QSCD.
	OIDPolicyQCPnQSCD = "0.4.0.194112.1.2"
	// OIDPolicyQCPlQSCD is QCP-l-qscd, EN 319 411-2 §5.3 d): legal person, private key in a QSCD.
	OIDPolicyQCPlQSCD = "0.4.0.194112.1.3"
	// OIDPolicyNCP is NCP, EN 319 411-1 §5.3: normalized certificate policy.
	OIDPolicyNCP = "0.4.0.2042.1.1"
	// OIDPolicyNCPPlus is NCP+, EN 319 411-1 §5.3: normalized policy requiring a secure device.
	OIDPolicyNCPPlus = "0.4.0.2042.1.2"

	// OIDQcCompliance is id-etsi-qcs-QcCompliance, EN 319 412-5 §4.2.1.
	OIDQcCompliance = "0.4.0.1862.1.1"
	// OIDQcSSCD is id-etsi-qcs-QcSSCD, EN 319 412-5 §4.2.2.
	OIDQcSSCD = "0.4.0.1862.1.4"
	// OIDQcPDS is id-etsi-qcs-QcPDS, EN 319 412-5 §4.3.4.
	OIDQcPDS = "0.4.0.1862.1.5"
	// OIDQcType is id-etsi-qcs-QcType, EN 319 412-5 §4.2.3.
	OIDQcType = "0.4.0.1862.1.6"
	// OIDQcTypeESign is id-etsi-qct-esign, EN 319 412-5 §4.2.3.
	OIDQcTypeESign = "0.4.0.1862.1.6.1"
	// OIDQcTypeESeal is id-etsi-qct-eseal, EN 319 412-5 §4.2.3.
	OIDQcTypeESeal = "0.4.0.1862.1.6.2"
	// OIDQcsPkixQCSyntaxV2 is id-qcs-pkixQCSyntax-v2, RFC 3739 §3.2.6; its
	// SemanticsInformation carries the EN 319 412-1 §5.1 semantics identifier.
	OIDQcsPkixQCSyntaxV2 = "1.3.6.1.5.5.7.11.2"
	// OIDSemanticsNatural is id-etsi-qcs-semanticsId-Natural, EN 319 412-1 §5.1.3.
	OIDSemanticsNatural = "0.4.0.194121.1.1"
	// OIDSemanticsLegal is id-etsi-qcs-semanticsId-Legal, EN 319 412-1 §5.1.4.
	OIDSemanticsLegal = "0.4.0.194121.1.2"

	// OIDExtQCStatements is id-pe-qcStatements, RFC 3739 §3.2.6.
	OIDExtQCStatements = "1.3.6.1.5.5.7.1.3"
	// OIDExtOCSPNoCheck is id-pkix-ocsp-nocheck, RFC 6960 §4.2.2.2.1.
	OIDExtOCSPNoCheck = "1.3.6.1.5.5.7.48.1.5"
	// OIDExtKeyUsageDocumentSigning is id-kp-documentSigning, RFC 9336.
	OIDExtKeyUsageDocumentSigning = "1.3.6.1.5.5.7.3.36"

	// OIDAttrGivenName is id-at-givenName, RFC 5280 Appendix A.
	OIDAttrGivenName = "2.5.4.42"
	// OIDAttrSurname is id-at-surname, RFC 5280 Appendix A.
	OIDAttrSurname = "2.5.4.4"
	// OIDAttrOrganizationIdentifier is id-at-organizationIdentifier, X.520 / EN 319 412-1 §5.1.4.
	OIDAttrOrganizationIdentifier = "2.5.4.97"

	// PlaceholderCAPolicyOID is the default policy OID of the CA itself. It
	// lies under {joint-iso-itu-t(2) example(999)}, the arc reserved for
	// documentation: a PLACEHOLDER that a real deployment must replace with
	// the OID registered for its certificate policy / CPS.
	PlaceholderCAPolicyOID = "2.999.1.1"
)

// ParseOID parses a dotted-decimal object identifier.
func ParseOID(s string) (asn1.ObjectIdentifier, error) {
	parts := strings.Split(s, ".")
	if len(parts) < 2 {
		return nil, fmt.Errorf("object identifier %q: need at least two arcs", s)
	}
	oid := make(asn1.ObjectIdentifier, len(parts))
	for i, p := range parts {
		if p == "" || (len(p) > 1 && p[0] == '0') {
			return nil, fmt.Errorf("object identifier %q: bad arc %q", s, p)
		}
		n, err := strconv.ParseUint(p, 10, 31)
		if err != nil {
			return nil, fmt.Errorf("object identifier %q: bad arc %q", s, p)
		}
		oid[i] = int(n)
	}
	if oid[0] > 2 || (oid[0] < 2 && oid[1] > 39) {
		return nil, fmt.Errorf("object identifier %q: first arcs out of range", s)
	}
	return oid, nil
}

// MustOID parses one of the constants above; it panics on a malformed
// literal, so it must only be given compile-time constants.
func MustOID(s string) asn1.ObjectIdentifier {
	oid, err := ParseOID(s)
	if err != nil {
		panic(err)
	}
	return oid
}
