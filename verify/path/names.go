package path

import (
	"bytes"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"errors"
	"fmt"
	"net"
	"net/url"
	"strings"
	"unicode"

	"golang.org/x/crypto/cryptobyte"
	cbasn1 "golang.org/x/crypto/cryptobyte/asn1"
)

// nameEqual compares two DER-encoded Names per RFC 5280 §7.1 (a simplified
// RFC 4518 preparation: case folding and whitespace compression of string
// attribute values, same RDN order and attribute types).
func nameEqual(a, b []byte) bool {
	if bytes.Equal(a, b) {
		return true
	}
	if eq, ok := fastNameEqual(a, b); ok {
		return eq
	}
	return slowNameEqual(a, b)
}

// slowNameEqual is nameEqual for any names (multi-valued RDNs, non-ASCII
// or non-string values), through encoding/asn1.
func slowNameEqual(a, b []byte) bool {
	na, err1 := parseName(a)
	nb, err2 := parseName(b)
	if err1 != nil || err2 != nil || len(na) != len(nb) {
		return false
	}
	return rdnPrefix(na, nb) && len(na) == len(nb)
}

func parseName(der []byte) (pkix.RDNSequence, error) {
	var rdn pkix.RDNSequence
	rest, err := asn1.Unmarshal(der, &rdn)
	if err != nil {
		return nil, err
	}
	if len(rest) != 0 {
		return nil, errors.New("trailing data after name")
	}
	return rdn, nil
}

func normValue(v any) string {
	s, ok := v.(string)
	if !ok {
		return fmt.Sprint(v)
	}
	return strings.Join(strings.FieldsFunc(strings.ToLower(s), unicode.IsSpace), " ")
}

// rdnPrefix reports whether prefix is an RDN-wise prefix of full.
func rdnPrefix(prefix, full pkix.RDNSequence) bool {
	if len(prefix) > len(full) {
		return false
	}
	for i := range prefix {
		p, f := prefix[i], full[i]
		if len(p) != len(f) {
			return false
		}
		for _, pa := range p {
			found := false
			for _, fa := range f {
				if pa.Type.Equal(fa.Type) && normValue(pa.Value) == normValue(fa.Value) {
					found = true
					break
				}
			}
			if !found {
				return false
			}
		}
	}
	return true
}

// generalName is one GeneralName: its context tag and content.
type generalName struct {
	tag  int
	data []byte // for directoryName: the DER Name; else the raw string/octets
}

const (
	gnEmail = 1
	gnDNS   = 2
	gnDir   = 4
	gnURI   = 6
	gnIP    = 7
)

// constraints of one CA certificate.
type constraintSet struct {
	permitted map[int][]generalName // present types only
	excluded  []generalName
}

// nameState accumulates name constraints: each CA's permitted subtrees form a
// layer (a name must satisfy every layer that constrains its type, which is
// the intersection of RFC 5280), excluded subtrees are the union.
type nameState struct {
	layers   []constraintSet
	excluded []generalName
}

var oidNameConstraints = asn1.ObjectIdentifier{2, 5, 29, 30}
var oidSAN = asn1.ObjectIdentifier{2, 5, 29, 17}
var oidEmailAttr = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 9, 1}

func (s *nameState) add(c *x509.Certificate) error {
	for _, e := range c.Extensions {
		if !e.Id.Equal(oidNameConstraints) {
			continue
		}
		perm, excl, err := parseNameConstraints(e.Value)
		if err != nil {
			return err
		}
		for _, g := range append(append([]generalName{}, perm...), excl...) {
			if g.tag == gnDNS && (strings.HasPrefix(string(g.data), ".") || !validDNSName(strings.TrimPrefix(string(g.data), "."), false) && len(g.data) > 0) {
				return fmt.Errorf("malformed dNSName constraint %q", g.data)
			}
		}
		if len(perm) > 0 {
			cs := constraintSet{permitted: map[int][]generalName{}}
			for _, g := range perm {
				cs.permitted[g.tag] = append(cs.permitted[g.tag], g)
			}
			s.layers = append(s.layers, cs)
		}
		s.excluded = append(s.excluded, excl...)
	}
	return nil
}

func parseNameConstraints(der []byte) (perm, excl []generalName, err error) {
	in := cryptobyte.String(der)
	var seq cryptobyte.String
	if !in.ReadASN1(&seq, cbasn1.SEQUENCE) || !in.Empty() {
		return nil, nil, errors.New("malformed name constraints")
	}
	for _, t := range []struct {
		tag cbasn1.Tag
		out *[]generalName
	}{{cbasn1.Tag(0).ContextSpecific().Constructed(), &perm}, {cbasn1.Tag(1).ContextSpecific().Constructed(), &excl}} {
		var subtrees cryptobyte.String
		var present bool
		if !seq.ReadOptionalASN1(&subtrees, &present, t.tag) {
			return nil, nil, errors.New("malformed name constraints subtrees")
		}
		for !subtrees.Empty() {
			var st cryptobyte.String
			if !subtrees.ReadASN1(&st, cbasn1.SEQUENCE) {
				return nil, nil, errors.New("malformed general subtree")
			}
			g, err := readGeneralName(&st)
			if err != nil {
				return nil, nil, err
			}
			*t.out = append(*t.out, g)
		}
	}
	return perm, excl, nil
}

func readGeneralName(s *cryptobyte.String) (generalName, error) {
	var body cryptobyte.String
	var tag cbasn1.Tag
	if !s.ReadAnyASN1(&body, &tag) {
		return generalName{}, errors.New("malformed general name")
	}
	num := int(tag & 0x1f)
	if num == gnDir {
		var inner cryptobyte.String
		if !body.ReadASN1Element(&inner, cbasn1.SEQUENCE) {
			return generalName{}, errors.New("malformed directoryName")
		}
		return generalName{tag: num, data: inner}, nil
	}
	return generalName{tag: num, data: body}, nil
}

// subjectNames collects the names of c subject to constraints.
func subjectNames(c *x509.Certificate) ([]generalName, error) {
	var out []generalName
	if len(c.RawSubject) > 2 {
		out = append(out, generalName{tag: gnDir, data: c.RawSubject})
	}
	hasEmailSAN := false
	for _, e := range c.Extensions {
		if !e.Id.Equal(oidSAN) {
			continue
		}
		in := cryptobyte.String(e.Value)
		var seq cryptobyte.String
		if !in.ReadASN1(&seq, cbasn1.SEQUENCE) {
			return nil, errors.New("malformed subjectAltName")
		}
		for !seq.Empty() {
			g, err := readGeneralName(&seq)
			if err != nil {
				return nil, err
			}
			if g.tag == gnEmail {
				hasEmailSAN = true
			}
			out = append(out, g)
		}
	}
	if !hasEmailSAN {
		for _, atv := range c.Subject.Names {
			if atv.Type.Equal(oidEmailAttr) {
				if s, ok := atv.Value.(string); ok {
					out = append(out, generalName{tag: gnEmail, data: []byte(s)})
				}
			}
		}
	}
	return out, nil
}

// maxNameChecks bounds the name-constraint comparisons per certificate.
const maxNameChecks = 1 << 16

func (s *nameState) check(c *x509.Certificate) error {
	if len(s.layers) == 0 && len(s.excluded) == 0 {
		return nil
	}
	names, err := subjectNames(c)
	if err != nil {
		return err
	}
	total := len(s.excluded)
	for _, l := range s.layers {
		for _, p := range l.permitted {
			total += len(p)
		}
	}
	if total*len(names) > maxNameChecks {
		return fmt.Errorf("%d names against %d constraints exceeds the checking limit", len(names), total)
	}
	for _, n := range names {
		if n.tag == gnDNS && !validDNSName(string(n.data), true) {
			return fmt.Errorf("malformed DNS name %q under name constraints", n.data)
		}
		if n.tag == gnEmail && !validMailbox(string(n.data)) {
			return fmt.Errorf("malformed email address %q under name constraints", n.data)
		}
	}
	for _, n := range names {
		for _, ex := range s.excluded {
			if ex.tag == n.tag {
				m, err := matchExcluded(n, ex)
				if err != nil {
					return err
				}
				if m {
					return fmt.Errorf("%s is excluded", describe(n))
				}
			}
		}
		for _, l := range s.layers {
			perm, ok := l.permitted[n.tag]
			if !ok {
				continue
			}
			okAny := false
			for _, p := range perm {
				m, err := matchName(n, p)
				if err != nil {
					return err
				}
				if m {
					okAny = true
					break
				}
			}
			if !okAny {
				return fmt.Errorf("%s is not permitted", describe(n))
			}
		}
	}
	return nil
}

func describe(n generalName) string {
	switch n.tag {
	case gnDir:
		var rdn pkix.RDNSequence
		if _, err := asn1.Unmarshal(n.data, &rdn); err == nil {
			return "directory name " + rdn.String()
		}
	case gnIP:
		return "IP " + net.IP(n.data).String()
	}
	return fmt.Sprintf("name [%d] %q", n.tag, n.data)
}

func matchName(n, c generalName) (bool, error) {
	switch n.tag {
	case gnDir:
		a, err := parseName(n.data)
		if err != nil {
			return false, err
		}
		b, err := parseName(c.data)
		if err != nil {
			return false, err
		}
		return rdnPrefix(b, a), nil
	case gnEmail:
		return matchEmail(string(n.data), string(c.data)), nil
	case gnDNS:
		return matchDNS(string(n.data), string(c.data)), nil
	case gnURI:
		u, err := url.Parse(string(n.data))
		if err != nil || u.Host == "" {
			return false, fmt.Errorf("URI %q has no host", n.data)
		}
		host := u.Hostname()
		if net.ParseIP(host) != nil {
			return false, fmt.Errorf("URI %q with an IP host", n.data)
		}
		return matchURIHost(host, string(c.data)), nil
	case gnIP:
		if len(c.data) != 2*len(n.data) {
			return false, nil
		}
		l := len(n.data)
		for i := 0; i < l; i++ {
			if n.data[i]&c.data[l+i] != c.data[i]&c.data[l+i] {
				return false, nil
			}
		}
		return true, nil
	}
	// Other name forms: exact comparison.
	return bytes.Equal(n.data, c.data), nil
}

// matchExcluded reports whether n falls within the excluded subtree ex.
// A wildcard dNSName is excluded as soon as one name it would match is:
// "*.example.com" stands for "bar.example.com" among others, so a CA
// forbidden to certify bar.example.com must not certify the wildcard either
// (RFC 5280 §4.2.1.10 names the subtree, RFC 9525 §6.3 the wildcard).
func matchExcluded(n, ex generalName) (bool, error) {
	if n.tag == gnDNS {
		if base, ok := strings.CutPrefix(string(n.data), "*."); ok {
			return wildcardMeetsSubtree(base, string(ex.data)), nil
		}
	}
	return matchName(n, ex)
}

// wildcardMeetsSubtree reports whether some name "<label>.base" lies within
// the dNSName subtree of constraint: either base is itself within the
// subtree, or the constraint is base plus exactly one label.
func wildcardMeetsSubtree(base, constraint string) bool {
	if matchDNS(base, constraint) {
		return true
	}
	base = strings.TrimSuffix(strings.ToLower(base), ".")
	constraint = strings.TrimSuffix(strings.ToLower(constraint), ".")
	label, rest, ok := strings.Cut(constraint, ".")
	return ok && label != "" && rest == base
}

// validMailbox checks an rfc822Name against the RFC 5321 §4.1.2 Mailbox
// syntax RFC 5280 §4.2.1.6 requires: a dot-atom or quoted-string local part,
// one "@", and a domain in preferred name syntax. An unquoted "@" in the
// local part ("a@b@example.com") makes the name malformed, and a malformed
// name cannot be shown to lie within a permitted subtree.
func validMailbox(s string) bool {
	at := strings.LastIndex(s, "@")
	if at <= 0 || !validDNSName(s[at+1:], false) {
		return false
	}
	local := s[:at]
	if len(local) > 64 {
		return false
	}
	if local[0] == '"' {
		return validQuotedLocal(local)
	}
	for _, atom := range strings.Split(local, ".") {
		if atom == "" {
			return false
		}
		for i := 0; i < len(atom); i++ {
			if !isAtext(atom[i]) {
				return false
			}
		}
	}
	return true
}

// isAtext reports whether b is an RFC 5322 atext character.
func isAtext(b byte) bool {
	return b >= 'a' && b <= 'z' || b >= 'A' && b <= 'Z' || b >= '0' && b <= '9' ||
		strings.IndexByte("!#$%&'*+-/=?^_`{|}~", b) >= 0
}

// validQuotedLocal checks an RFC 5321 Quoted-string local part.
func validQuotedLocal(q string) bool {
	if len(q) < 2 || q[len(q)-1] != '"' {
		return false
	}
	body := q[1 : len(q)-1]
	for i := 0; i < len(body); i++ {
		switch b := body[i]; {
		case b == '\\':
			i++
			if i >= len(body) || body[i] < 32 || body[i] > 126 {
				return false
			}
		case b == '"' || b < 32 || b > 126:
			return false
		}
	}
	return true
}

func matchEmail(mailbox, constraint string) bool {
	at := strings.LastIndex(mailbox, "@")
	if at < 0 {
		return false
	}
	if strings.Contains(constraint, "@") {
		cat := strings.LastIndex(constraint, "@")
		return mailbox[:at] == constraint[:cat] && strings.EqualFold(mailbox[at+1:], constraint[cat+1:])
	}
	host := strings.ToLower(mailbox[at+1:])
	constraint = strings.ToLower(constraint)
	if strings.HasPrefix(constraint, ".") {
		return strings.HasSuffix(host, constraint)
	}
	return host == constraint
}

func matchDNS(name, constraint string) bool {
	name = strings.TrimSuffix(strings.ToLower(name), ".")
	constraint = strings.TrimSuffix(strings.ToLower(constraint), ".")
	if constraint == "" {
		return true
	}
	if strings.HasPrefix(constraint, ".") {
		return strings.HasSuffix(name, constraint)
	}
	return name == constraint || strings.HasSuffix(name, "."+constraint)
}

func matchURIHost(host, constraint string) bool {
	host = strings.ToLower(host)
	constraint = strings.ToLower(constraint)
	if strings.HasPrefix(constraint, ".") {
		return strings.HasSuffix(host, constraint)
	}
	return host == constraint
}

// validDNSName checks preferred name syntax (letters, digits, hyphens;
// with wildcard, "*" as the whole leftmost label).
func validDNSName(s string, wildcard bool) bool {
	s = strings.TrimSuffix(s, ".")
	if s == "" || len(s) > 253 {
		return false
	}
	labels := strings.Split(s, ".")
	for i, l := range labels {
		if wildcard && i == 0 && l == "*" && len(labels) > 1 {
			continue
		}
		if l == "" || len(l) > 63 || l[0] == '-' || l[len(l)-1] == '-' {
			return false
		}
		for _, r := range l {
			if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-') {
				return false
			}
		}
	}
	return true
}
