package ca

import (
	"crypto/x509"
	"encoding/asn1"
	"errors"
	"fmt"

	"github.com/thiqa/thiqa/policies"
)

// carried says what the CA's profiles carry into certificates of what a
// request names: SubjectUnsupported's messages end with it.
const carried = "the CA's profiles put only C, serialNumber, organizationIdentifier, O, givenName, surname and CN " +
	"into a certificate's subject (and one email address in its subjectAltName)"

// attributeNames are the short names of subject attributes the CA does not
// carry (RFC 4519, RFC 5280 appendix A, PKCS #9), for SubjectUnsupported
// to name them as an RA would have written them; others are named by OID.
var attributeNames = map[string]string{
	"2.5.4.11": "OU", "2.5.4.7": "L", "2.5.4.8": "ST", "2.5.4.9": "street", "2.5.4.12": "title",
	"2.5.4.65": "pseudonym", "1.2.840.113549.1.9.1": "emailAddress", "2.5.4.46": "dnQualifier",
	"2.5.4.17": "postalCode", "2.5.4.43": "initials", "2.5.4.44": "generationQualifier", "2.5.4.15": "businessCategory",
	"2.5.4.13": "description", "2.5.4.41": "name", "2.5.4.45": "x500UniqueIdentifier", "2.5.4.16": "postalAddress",
	"2.5.4.18": "postOfficeBox", "0.9.2342.19200300.100.1.1": "UID", "0.9.2342.19200300.100.1.25": "DC",
	"1.2.840.113549.1.9.2": "unstructuredName", "1.3.6.1.4.1.311.60.2.1.3": "jurisdictionC",
	"1.3.6.1.4.1.311.60.2.1.2": "jurisdictionST", "1.3.6.1.4.1.311.60.2.1.1": "jurisdictionL",
}

// extensionNames are the short names of the extensions a request may ask
// for, for SubjectUnsupported to name them; others are named by OID.
var extensionNames = map[string]string{
	"2.5.29.15": "keyUsage", "2.5.29.37": "extKeyUsage", "2.5.29.19": "basicConstraints", "2.5.29.32": "certificatePolicies",
	"2.5.29.14": "subjectKeyIdentifier", "2.5.29.35": "authorityKeyIdentifier", "2.5.29.31": "cRLDistributionPoints",
	"1.3.6.1.5.5.7.1.1": "authorityInfoAccess", "1.3.6.1.5.5.7.1.3": "qcStatements", "2.5.29.30": "nameConstraints",
	"2.5.29.18": "issuerAltName", "2.5.29.9": "subjectDirectoryAttributes", "2.5.29.36": "policyConstraints",
	"2.5.29.33": "policyMappings", "2.5.29.54": "inhibitAnyPolicy", "1.3.6.1.5.5.7.48.1.5": "ocspNoCheck",
}

// oidSubjectAltName is the subjectAltName extension (RFC 5280 §4.2.1.6).
const oidSubjectAltName = "2.5.29.17"

// generalNameTypes name GeneralName's choices (RFC 5280 §4.2.1.6) by
// their context tag.
var generalNameTypes = map[int]string{0: "otherName", 1: "rfc822Name", 2: "dNSName", 3: "x400Address", 4: "directoryName",
	5: "ediPartyName", 6: "uniformResourceIdentifier", 7: "iPAddress", 8: "registeredID"}

// errSubjectAltName is a subjectAltName extension's value that is not
// GeneralNames, or an rfc822Name that is not an IA5String.
var errSubjectAltName = errors.New("malformed subjectAltName")

// SubjectAltName reads a subjectAltName extension's value (GeneralNames,
// RFC 5280 §4.2.1.6): its email addresses (rfc822Name), as
// x509.ParseCertificateRequest fills EmailAddresses, and the types of its
// other names (dNSName, iPAddress …) in their order. A CMP certTemplate's
// subjectAltName is read with it, as a CSR's is by crypto/x509.
func SubjectAltName(value []byte) (emails, others []string, err error) {
	var names []asn1.RawValue
	if rest, err := asn1.Unmarshal(value, &names); err != nil || len(rest) > 0 {
		return nil, nil, errSubjectAltName
	}
	for _, n := range names {
		if n.Class != asn1.ClassContextSpecific {
			return nil, nil, errSubjectAltName
		}
		if n.Tag == 1 && !n.IsCompound {
			for _, b := range n.Bytes {
				if b >= 0x80 {
					return nil, nil, fmt.Errorf("%w: an rfc822Name that is not ASCII (IA5String)", errSubjectAltName)
				}
			}
			emails = append(emails, string(n.Bytes))
			continue
		}
		name, ok := generalNameTypes[n.Tag]
		if !ok {
			name = fmt.Sprintf("[%d]", n.Tag)
		}
		others = append(others, name)
	}
	return emails, others, nil
}

// SubjectUnsupported names what an RA's request (c: the subject, the
// email addresses and the requested extensions of its CSR or CMP
// certTemplate) asks for that the CA would not carry into the
// certificate, one *policies.SubjectError each, for the CA to refuse it
// (Request.SubjectUnsupported): a subject attribute SubjectFields does not
// read (OU, L, ST, emailAddress in the DN, an unknown OID …), named by its
// short name or OID; one it reads whose value is not a string or is
// empty; an empty email address; a
// subjectAltName name other than rfc822Name; any other extension than
// keyUsage, extKeyUsage, basicConstraints and subjectKeyIdentifier, which
// the CA accepts when they say what the profile puts in the certificate
// anyway and refuses otherwise (Request.Extensions, profileExtensions).
// SubjectFields would otherwise drop each without a word and the RA
// believe the certificate says what it asked for. Nil when none.
//
// The certificate's extensions are the profile's. RFC 4211 §5 lets a CA
// change what a template asks for, but only saying so (grantedWithMods,
// RFC 4210 §5.2.3), which this CA never answers, and RFC 9483 §4.1.1 has a
// template the CA will not honour refused with badCertTemplate: so a
// requested extension the certificate would not carry as asked is refused.
func SubjectUnsupported(c *x509.Certificate) []*policies.SubjectError {
	var out []*policies.SubjectError
	for _, n := range c.Subject.Names {
		oid := n.Type.String()
		a, read := readAttribute(oid)
		if !read {
			name := attributeNames[oid]
			if name == "" {
				name = oid
			} else {
				name += " (" + oid + ")"
			}
			field := attributeNames[oid]
			if field == "" {
				field = oid
			}
			out = append(out, &policies.SubjectError{Field: field, Reason: fmt.Sprintf(
				"the request's subject names %s, which the certificate would not carry: %s", name, carried)})
			continue
		}
		if v, ok := n.Value.(string); !ok {
			out = append(out, &policies.SubjectError{Field: a.field, Reason: fmt.Sprintf(
				"the request's %s attribute is not a string the CA can read: give it as a PrintableString or UTF8String "+
					"(not an OCTET STRING, a number or a UniversalString)", a.name)})
		} else if v == "" {
			// RFC 5280 has no empty attribute: the certificate would leave
			// it out, an optional one without a word.
			out = append(out, &policies.SubjectError{Field: a.field, Reason: fmt.Sprintf(
				"the request's %s attribute is empty, which the certificate would not carry: give it a value, or leave it out", a.name)})
		}
	}
	for _, e := range c.Extensions {
		oid := e.Id.String()
		if oid == oidSubjectAltName {
			_, others, err := SubjectAltName(e.Value)
			if err != nil {
				out = append(out, &policies.SubjectError{Field: "subjectAltName", Reason: fmt.Sprintf("the request's subjectAltName cannot be read: %v", err)})
				continue
			}
			for _, e := range c.EmailAddresses {
				if e == "" {
					out = append(out, &policies.SubjectError{Field: "subjectAltName", Reason: "the request's subjectAltName has an empty email address (rfc822Name): give the address, or leave it out"})
				}
			}
			for _, o := range others {
				out = append(out, &policies.SubjectError{Field: "subjectAltName", Reason: fmt.Sprintf(
					"the request's subjectAltName has a name of type %s, which the certificate would not carry: %s", o, carried)})
			}
			continue
		}
		if _, ok := profileExtensions[oid]; ok {
			continue // checkRequestedExtensions: accepted when it is the profile's
		}
		name := extensionNames[oid]
		if name == "" {
			name = oid
		}
		out = append(out, &policies.SubjectError{Field: name, Reason: fmt.Sprintf(
			"the request asks for the %s extension, which the CA does not take from a request: the certificate's extensions "+
				"(key usage, extended key usage, basic constraints, policies …) are its profile's, and %s", name, carried)})
	}
	return out
}

// readAttribute finds the attribute SubjectFields reads by OID.
func readAttribute(oid string) (struct{ oid, field, name string }, bool) {
	for _, a := range subjectAttributes {
		if a.oid == oid {
			return a, true
		}
	}
	return struct{ oid, field, name string }{}, false
}

// checkSubjectUnsupported refuses a request that asks for what the CA
// would not carry into the certificate (Request.SubjectUnsupported).
func checkSubjectUnsupported(unsupported []*policies.SubjectError) error {
	if len(unsupported) == 0 {
		return nil
	}
	return policies.SubjectErrors(unsupported)
}
