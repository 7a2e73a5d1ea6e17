package hierarchy

import (
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/pem"
	"fmt"
	"os"
	"slices"
	"strings"

	"github.com/thiqa/thiqa/policies"
)

// A rollover gives a CA a new key, not a new name: every generation's
// subject has the same C, O and organizationIdentifier as the one before
// (only the commonName gains " G<n>"). The deployment takes its country
// from the citizen CA (CountryMismatches), so a generation certified for
// another country would quietly move the citizen service there.

// identityAttrs are the subject attributes every generation of a CA
// keeps, with the names messages give them.
var identityAttrs = []struct {
	name string
	oid  asn1.ObjectIdentifier
}{
	{"C", asn1.ObjectIdentifier{2, 5, 4, 6}},
	{"O", asn1.ObjectIdentifier{2, 5, 4, 10}},
	{"organizationIdentifier", policies.MustOID(policies.OIDAttrOrganizationIdentifier)},
}

// SubjectChangeError refuses a new generation of a CA whose subject
// differs from its current generation's certificate in an attribute every
// generation keeps (C, O or organizationIdentifier): a CA of another
// country or organisation is a new CA, not a rollover.
type SubjectChangeError struct {
	// CA is the CA's name in the configuration (citizen).
	CA string
	// Attribute is the attribute that differs: C, O or
	// organizationIdentifier.
	Attribute string
	// Source names what holds the new subject (thiqa.yaml, a CSR file, the
	// certificate to import); New are its values of Attribute.
	Source string
	New    []string
	// CurrentPath is the certificate of the CA's current (newest
	// certified) generation; Current are its values of Attribute.
	CurrentPath string
	Current     []string
	// Advice says what to do, in this case.
	Advice string
}

// Error names the attribute, both values and what to do.
func (e *SubjectChangeError) Error() string {
	return fmt.Sprintf("CA %s: %s names %s, but the certificate of its current generation %s names %s: a rollover keeps the CA's C, O and organizationIdentifier "+
		"(only its commonName gains \" G<n>\"); %s; a CA for another country or organisation is a new CA, not a rollover (docs/ceremony.md, Rollover of an issuing CA)",
		e.CA, e.Source, attrText(e.Attribute, e.New), e.CurrentPath, attrText(e.Attribute, e.Current), e.Advice)
}

// attrText renders the values of attribute attr ("C=OM", or "no C").
func attrText(attr string, values []string) string {
	if len(values) == 0 {
		return "no " + attr
	}
	return attr + "=" + strings.Join(values, ",")
}

// nameValues returns the values of attribute oid in n, in order: from
// n.Names when n was parsed, else from n.ExtraNames.
func nameValues(n pkix.Name, oid asn1.ObjectIdentifier) []string {
	attrs := n.Names
	if len(attrs) == 0 {
		attrs = n.ExtraNames
	}
	var out []string
	for _, a := range attrs {
		if a.Type.Equal(oid) {
			out = append(out, fmt.Sprint(a.Value))
		}
	}
	return out
}

// configuredName is the part of the CA's configured subject that every
// generation keeps (writeCSR puts it in the CSR).
func configuredName(conf CA) pkix.Name {
	var n pkix.Name
	for _, a := range []struct {
		oid   asn1.ObjectIdentifier
		value string
	}{{identityAttrs[0].oid, conf.Country}, {identityAttrs[1].oid, conf.Organization}, {identityAttrs[2].oid, conf.OrganizationIdentifier}} {
		if a.value != "" {
			n.Names = append(n.Names, pkix.AttributeTypeAndValue{Type: a.oid, Value: a.value})
		}
	}
	return n
}

// checkSameCA refuses next, the subject of a new generation of the CA
// conf describes (source names where it comes from), when it differs
// from current's, the certificate of its current generation (at
// currentPath), in C, O or organizationIdentifier; advice says what to do.
func checkSameCA(conf CA, next pkix.Name, source string, current *x509.Certificate, currentPath, advice string) error {
	for _, a := range identityAttrs {
		have, want := nameValues(current.Subject, a.oid), nameValues(next, a.oid)
		if !slices.Equal(have, want) {
			return &SubjectChangeError{CA: conf.Name, Attribute: a.name, Source: source, New: want, CurrentPath: currentPath, Current: have, Advice: advice}
		}
	}
	return nil
}

// currentGeneration returns the newest generation with a certificate
// among gens, nil when none has one.
func currentGeneration(gens []*generation) *generation {
	var cur *generation
	for _, g := range gens {
		if g.cert != nil {
			cur = g
		}
	}
	return cur
}

// checkRolloverSubject refuses to go on with generation g of a rollover
// when the subject it requests (its CSR's, when it has one, else the one
// writeCSR would put in it from the configuration) names another CA than
// cur, the current generation.
func checkRolloverSubject(g, cur *generation) error {
	if g.hasCSR {
		csr, err := readCSR(g)
		if err != nil {
			return err
		}
		return checkSameCA(g.conf, csr.Subject, "its waiting CSR "+g.csrPath, cur.cert, cur.certPath,
			"the CSR was written after thiqa.yaml was edited: do not take it to the key ceremony; put thiqa.yaml back, move the CSR away and run "+
				"`thiqa ca rollover` again to write the CSR of the same key anew (nothing was changed)")
	}
	return checkSameCA(g.conf, configuredName(g.conf), "thiqa.yaml (ca.issuers, name: "+g.conf.Name+")", cur.cert, cur.certPath,
		"put thiqa.yaml back (thiqa config check warns of the country) and run the command again (nothing was generated or recorded)")
}

// readCSR reads and parses the CSR file of generation g.
func readCSR(g *generation) (*x509.CertificateRequest, error) {
	raw, err := os.ReadFile(g.csrPath)
	if err != nil {
		return nil, fmt.Errorf("CA %s: reading %s: %w", g.name, g.csrPath, err)
	}
	der := raw
	if b, _ := pem.Decode(raw); b != nil {
		der = b.Bytes
	}
	csr, err := x509.ParseCertificateRequest(der)
	if err != nil {
		return nil, fmt.Errorf("CA %s: %s is not a certificate request (%v): move it away and run the command again to write it anew (nothing was changed)", g.name, g.csrPath, err)
	}
	return csr, nil
}

// sameName reports whether a and b (parsed names) hold the same
// attributes with the same values in the same order, whatever string
// types encode them.
func sameName(a, b pkix.Name) bool {
	return slices.EqualFunc(a.Names, b.Names, func(x, y pkix.AttributeTypeAndValue) bool {
		return x.Type.Equal(y.Type) && fmt.Sprint(x.Value) == fmt.Sprint(y.Value)
	})
}

// checkImportSubject refuses cert as a later generation g of its CA
// (prev, the generation before, has a certificate) when its subject is
// not the one in g's CSR (when the CSR is there: its commonName keeps the
// generations apart), or names another CA than prev's. The first
// generation's subject is the root's to shape (an existing national root
// may not copy the CSR's): it is not checked.
func checkImportSubject(g, prev *generation, cert *x509.Certificate) error {
	if prev == nil {
		return nil
	}
	if g.hasCSR {
		csr, err := readCSR(g)
		if err != nil {
			return err
		}
		if !sameName(csr.Subject, cert.Subject) {
			return fmt.Errorf("the certificate's subject %q is not the one CA %s requested in %s (%q): the ceremony must certify the CSR's subject as it is",
				cert.Subject.String(), g.name, g.csrPath, csr.Subject.String())
		}
	}
	return checkSameCA(g.conf, cert.Subject, "the certificate for generation "+fmt.Sprint(g.n), prev.cert, prev.certPath,
		"its CSR was written from an edited thiqa.yaml (or edited): put thiqa.yaml back, move the CSR away, run `thiqa ca rollover` again "+
			"to write the CSR of the same key anew and have the ceremony certify that one; revoke the refused certificate on the root's CRL (thiqa ca crl --revoke)")
}
