package ca

import (
	"crypto/x509"
	"fmt"

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
// (Request.SubjectRepeats) for the CA to refuse it. Nil when none.
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
	return out
}

// checkSubjectRepeats refuses a request whose subject repeats an
// attribute (Request.SubjectRepeats): one *policies.SubjectError per
// attribute, on the field it fills.
func checkSubjectRepeats(repeats []string) error {
	if len(repeats) == 0 {
		return nil
	}
	var errs policies.SubjectErrors
	for _, name := range repeats {
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
