package ca

import (
	"crypto/x509"
	"fmt"

	"github.com/thiqa/thiqa/internal/auth"
	"github.com/thiqa/thiqa/policies"
)

// subjectAttributes are the attributes SubjectFields reads, in the order
// SubjectRepeats names them, each with the request field it fills.
var subjectAttributes = []struct{ oid, field, name string }{
	{"2.5.4.6", policies.FieldCountry, "C"},
	{"2.5.4.5", policies.FieldCivilNumber, "serialNumber"},
	{policies.OIDAttrOrganizationIdentifier, policies.FieldOrganizationIdentifier, "organizationIdentifier"},
	{"2.5.4.10", policies.FieldOrganizationName, "O"},
	{policies.OIDAttrGivenName, policies.FieldGivenName, "givenName"},
	{policies.OIDAttrSurname, policies.FieldSurname, "surname"},
	{"2.5.4.3", policies.FieldCommonName, "CN"},
}

// SubjectRepeats names the attributes that c's subject carries more than
// once, of those SubjectFields reads (C, serialNumber, organizationIdentifier,
// O, givenName, surname, CN), whether in RDNs of their own or in one
// multi-valued RDN: SubjectFields keeps one value of each, so a subject
// with two countries or two identity numbers would name whichever came
// last. A request that reads its subject with SubjectFields passes them
// (Request.SubjectRepeats) for the CA to refuse it. More than one email
// address in the subjectAltName is named rfc822Name: SubjectFields keeps
// the first alone. Nil when none.
func SubjectRepeats(c *x509.Certificate) []string {
	counts := map[string]int{}
	for _, n := range c.Subject.Names {
		counts[n.Type.String()]++
	}
	var out []string
	for _, a := range subjectAttributes {
		if counts[a.oid] > 1 {
			out = append(out, a.name)
		}
	}
	if len(c.EmailAddresses) > 1 {
		out = append(out, repeatEmail)
	}
	return out
}

// repeatEmail is SubjectRepeats' name for more than one rfc822Name in the
// subjectAltName: SubjectFields keeps the first email address alone.
const repeatEmail = "rfc822Name"

// checkSubjectRepeats refuses a request whose subject repeats an
// attribute (Request.SubjectRepeats): one *policies.SubjectError per
// attribute, on the field it fills.
func checkSubjectRepeats(repeats []string) error {
	if len(repeats) == 0 {
		return nil
	}
	var errs policies.SubjectErrors
	for _, name := range repeats {
		if name == repeatEmail {
			errs = append(errs, &policies.SubjectError{Field: policies.FieldEmail, Reason: "the request's subjectAltName has more than one " +
				"email address (rfc822Name): a certificate carries one, and the CA would keep the first alone"})
			continue
		}
		field := name
		for _, a := range subjectAttributes {
			if a.name == name {
				field = a.field
			}
		}
		errs = append(errs, &policies.SubjectError{Field: field, Reason: fmt.Sprintf(
			"the request's subject has more than one %s attribute: a subject names one (two countries or two identity numbers would be ambiguous)", name)})
	}
	return errs
}

// checkNamedSerialNumber refuses, for a natural-person profile, a
// request whose own subject names a serialNumber (Request.SerialNumber)
// that SubjectFields cannot read a civil number from: another identity
// type of EN 319 412-1 §5.1.3 (PAS, CD, TIN …), a lower-case country
// code, spaces. The profile issues serialNumber IDC<C>-<civil number>
// only, so such a request could only be refused as having no civil number,
// which does not say why, or, were the civil number optional, be
// certified without the identity the RA named. Other profiles do not
// read serialNumber and keep their behaviour.
func checkNamedSerialNumber(p *policies.Profile, named string) error {
	if named == "" || !p.NaturalPerson() || auth.CivilNumber(named) != "" {
		return nil
	}
	return &policies.SubjectError{Field: policies.FieldCivilNumber, Reason: fmt.Sprintf(
		"the request's serialNumber %q is not a national identity number IDC<C>-<civil number> (EN 319 412-1 §5.1.3, "+
			"upper-case country code, no spaces): profile %s reads the civil number from it and issues no other identity type (PAS, CD, TIN …)",
		named, p.Name)}
}
