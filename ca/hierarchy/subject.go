package hierarchy

import (
	"crypto"
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
// yaml is its key in thiqa.yaml's ca.issuers.
var identityAttrs = []struct {
	name, yaml string
	oid        asn1.ObjectIdentifier
}{
	{"C", "country", asn1.ObjectIdentifier{2, 5, 4, 6}},
	{"O", "organization", asn1.ObjectIdentifier{2, 5, 4, 10}},
	{"organizationIdentifier", "organizationIdentifier", policies.MustOID(policies.OIDAttrOrganizationIdentifier)},
}

// SubjectChangeError refuses a new generation of a CA whose subject
// differs from what names its current generation in an attribute every
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
	// CurrentPath is the file the new subject was compared with: the
	// certificate of the CA's current (newest certified) generation, or
	// the CSR it was certified from (CurrentIsCSR); Current are its values
	// of Attribute.
	CurrentPath string
	Current     []string
	// CurrentIsCSR says CurrentPath is the current generation's CSR, not
	// its certificate: the root that certified it may have shaped the
	// certificate's subject otherwise (an existing national root), so what
	// thiqa.yaml asked for then is compared with what it asks for now.
	CurrentIsCSR bool
	// Advice says what to do, in this case.
	Advice string
}

// Error names the attribute, both values and what to do.
func (e *SubjectChangeError) Error() string {
	current := "the certificate of its current generation"
	if e.CurrentIsCSR {
		current = "the CSR its current generation was certified from,"
	}
	return fmt.Sprintf("CA %s: %s names %s, but %s %s names %s: a rollover keeps the CA's C, O and organizationIdentifier "+
		"(only its commonName gains \" G<n>\"); %s; a CA for another country or organisation is a new CA, not a rollover (docs/ceremony.md, Rollover of an issuing CA)",
		e.CA, e.Source, attrText(e.Attribute, e.New), current, e.CurrentPath, attrText(e.Attribute, e.Current), e.Advice)
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

// yamlAdvice says how to make thiqa.yaml give the CA conf describes the
// values of the attribute thiqa.yaml calls yamlKey.
func yamlAdvice(conf CA, yamlKey string, values []string) string {
	if len(values) == 0 {
		return fmt.Sprintf("remove %s from CA %s in thiqa.yaml (ca.issuers)", yamlKey, conf.Name)
	}
	return fmt.Sprintf("set %s of CA %s in thiqa.yaml (ca.issuers) to %s", yamlKey, conf.Name, strings.Join(values, ","))
}

// keptCSR returns the CSR generation g was certified from when its file
// is still there and is for g's certified key, else nil.
func keptCSR(g *generation) *x509.CertificateRequest {
	if !g.hasCSR || g.cert == nil {
		return nil
	}
	csr, err := readCSR(g)
	if err != nil {
		return nil
	}
	if pub, ok := g.cert.PublicKey.(interface{ Equal(crypto.PublicKey) bool }); !ok || !pub.Equal(csr.PublicKey) {
		return nil
	}
	return csr
}

// checkRolloverSubject refuses to go on with generation g of a rollover
// when the subject it requests (its CSR's, when it has one, else the one
// writeCSR would put in it from the configuration) names another CA than
// cur, the current generation (SubjectChangeError).
//
// What it is compared with:
//   - C with cur's certificate: the deployment takes its country from the
//     certificates (CountryMismatches), and a new generation certified
//     for another one would move the service there. A root that leaves C
//     out of its certificates (a foreign root the country adopted) would
//     block every rollover that way, and the advice, to remove the
//     country from thiqa.yaml, would take it from the deployment: C is
//     then compared with the CSR cur was certified from, when it is kept,
//     else not at all;
//   - O and organizationIdentifier with the CSR cur was certified from,
//     when it is kept (and is for cur's key): what thiqa.yaml asked for
//     then, so an edit since is caught whatever the root made of the
//     request. An existing national root may shape its certificates'
//     subjects its own way (drop organizationIdentifier, rewrite O,
//     reorder, re-encode) and will shape the new generation's the same
//     way: comparing thiqa.yaml with its certificate would refuse every
//     rollover of such a deployment for an edit nobody made;
//   - without that CSR (moved away, or a CA an online root made), O and
//     organizationIdentifier with cur's certificate where both name the
//     attribute: a root that drops one does not block the rollover, a
//     value that differs is refused.
//
// The advice says what to put in thiqa.yaml, which is true whether it was
// edited or the root shaped the certificate.
func checkRolloverSubject(g, cur *generation) error {
	next, source := configuredName(g.conf), "thiqa.yaml (ca.issuers, name: "+g.conf.Name+")"
	if g.hasCSR {
		csr, err := readCSR(g)
		if err != nil {
			return err
		}
		next, source = csr.Subject, "its waiting CSR "+g.csrPath
	}
	curCSR := keptCSR(cur)
	for _, a := range identityAttrs {
		want := nameValues(next, a.oid)
		have, path, isCSR := nameValues(cur.cert.Subject, a.oid), cur.certPath, false
		switch {
		case a.name == "C" && len(have) > 0:
		case a.name == "C" && curCSR == nil:
			// A root that leaves C out of its certificates (a foreign
			// root the country adopted): nothing says which country
			// was asked for, and the new generation will lack it too.
			continue
		case curCSR != nil:
			have, path, isCSR = nameValues(curCSR.Subject, a.oid), cur.csrPath, true
		case len(have) == 0 || len(want) == 0:
			continue
		}
		if slices.Equal(have, want) {
			continue
		}
		advice := yamlAdvice(g.conf, a.yaml, have)
		if g.hasCSR {
			advice = "do not take the CSR to the key ceremony: " + advice + ", move the CSR away and run `thiqa ca rollover` again to write the CSR of the same key anew (nothing was changed)"
		} else {
			advice += " and run the command again (nothing was generated or recorded)"
		}
		if a.name == "C" {
			advice += "; `thiqa config check` warns when thiqa.yaml's country is not the certificate's"
		}
		return &SubjectChangeError{CA: g.conf.Name, Attribute: a.name, Source: source, New: want, CurrentPath: path, Current: have, CurrentIsCSR: isCSR, Advice: advice}
	}
	return nil
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

// looseName is n's attributes as "type=value" with each value's case
// folded and its spaces collapsed, sorted: two names equal so are the same
// name to software that compares names loosely (RFC 5280 §7.1) or ignores
// their order and string types.
func looseName(n pkix.Name) []string {
	var out []string
	for _, a := range n.Names {
		out = append(out, a.Type.String()+"="+strings.ToLower(strings.Join(strings.Fields(fmt.Sprint(a.Value)), " ")))
	}
	slices.Sort(out)
	return out
}

// checkImportSubject refuses cert as generation g of its CA when another
// generation of it has a certificate (others: the CA's generations but
// g) and cert names another CA than the newest of them, prev (C, O or
// organizationIdentifier not prev's certificate's: SubjectChangeError),
// or the very name of one of them (each generation's own name keeps
// their certificates and serial numbers apart). The first generation of
// a new CA is not checked: its subject is the root's to shape.
//
// cert is compared with prev's certificate, not with g's CSR: both come
// from the same root, and a root may shape subjects its own way (an
// existing national root may drop organizationIdentifier, reorder or
// re-encode the subject); requiring the CSR's subject as it is would
// refuse every later generation of such a deployment, with nothing its
// operator could do. `thiqa ca sign` certifies the CSR's subject as it
// is; when cert's is not its CSR's, Import says so (subjectNote).
func checkImportSubject(g *generation, others []*generation, cert *x509.Certificate) error {
	prev := currentGeneration(others)
	if prev == nil {
		return nil
	}
	var csr *x509.CertificateRequest
	if g.hasCSR {
		var err error
		if csr, err = readCSR(g); err != nil {
			return err
		}
	}
	for _, a := range identityAttrs {
		have, got := nameValues(prev.cert.Subject, a.oid), nameValues(cert.Subject, a.oid)
		if slices.Equal(have, got) {
			continue
		}
		revoke := "have the root revoke the refused certificate (thiqa ca crl --revoke, or the existing root's operator)"
		var advice string
		switch {
		case csr != nil && slices.Equal(nameValues(csr.Subject, a.oid), got):
			advice = fmt.Sprintf("its CSR %s asks for it (written from a thiqa.yaml that does not name the CA as generation %d's certificate does): %s; move the CSR away, %s, "+
				"run `thiqa ca rollover` again to write the CSR of the same key anew and have the root certify that one", g.csrPath, prev.n, revoke, yamlAdvice(g.conf, a.yaml, have))
		case csr != nil:
			advice = fmt.Sprintf("its CSR %s asks for %s: the root certified something else; %s and have it certify the CSR with %s, as generation %d's certificate names it",
				g.csrPath, attrText(a.name, nameValues(csr.Subject, a.oid)), revoke, attrText(a.name, have), prev.n)
		default:
			advice = fmt.Sprintf("%s; run `thiqa ca rollover` again to write the CSR of the same key anew and have the root certify it with %s, as generation %d's certificate names it",
				revoke, attrText(a.name, have), prev.n)
		}
		return &SubjectChangeError{CA: g.conf.Name, Attribute: a.name, Source: "the certificate for generation " + fmt.Sprint(g.n), New: got,
			CurrentPath: prev.certPath, Current: have, Advice: advice}
	}
	for _, o := range others {
		if o.cert != nil && slices.Equal(looseName(o.cert.Subject), looseName(cert.Subject)) {
			return fmt.Errorf("the certificate names CA %s %q, as generation %d's certificate %s does: each generation needs a name of its own, or their certificates and serial numbers mix "+
				"(its CSR's commonName ends in \" G%d\"); have the root revoke this certificate (thiqa ca crl --revoke, or the existing root's operator) and certify the CSR's subject",
				g.conf.Name, cert.Subject.String(), o.n, o.certPath, g.n)
		}
	}
	return nil
}

// subjectNote says when cert's subject is not the one generation g
// requested in its CSR: the root shaped it its own way (an existing
// national root may; `thiqa ca sign` certifies the CSR's subject as it
// is), which the operator should know of.
func subjectNote(g *generation, cert *x509.Certificate) string {
	if !g.hasCSR {
		return ""
	}
	csr, err := readCSR(g)
	if err != nil || sameName(csr.Subject, cert.Subject) {
		return ""
	}
	return fmt.Sprintf("the certificate's subject %q is not the one CA %s requested in %s (%q): the root shaped it its own way (an existing national root may; thiqa ca sign certifies the CSR's subject as it is)",
		cert.Subject.String(), g.name, g.csrPath, csr.Subject.String())
}
