package tsl

import (
	"crypto/x509"
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/beevik/etree"
)

// Namespaces of TS 119 612 (v5 and v6 share them) and of the signature.
const (
	NSTSL        = "http://uri.etsi.org/02231/v2#"
	NSAdditional = "http://uri.etsi.org/02231/v2/additionaltypes#"
	NSSvcInfoExt = "http://uri.etsi.org/TrstSvc/SvcInfoExt/eSigDir-1999-93-EC-TrustedList/#"
	NSXMLDSig    = "http://www.w3.org/2000/09/xmldsig#"
	NSXAdES      = "http://uri.etsi.org/01903/v1.3.2#"
	// TSLTag is the fixed value of the root's TSLTag attribute.
	TSLTag = "http://uri.etsi.org/19612/TSLTag"
)

// Service types, statuses and extension URIs used by the qualification rules.
const (
	SvcTypeCAQC    = "http://uri.etsi.org/TrstSvc/Svctype/CA/QC"
	SvcTypeCAPKC   = "http://uri.etsi.org/TrstSvc/Svctype/CA/PKC"
	SvcTypeTSAQTST = "http://uri.etsi.org/TrstSvc/Svctype/TSA/QTST"

	StatusGranted   = "http://uri.etsi.org/TrstSvc/TrustedList/Svcstatus/granted"
	StatusWithdrawn = "http://uri.etsi.org/TrstSvc/TrustedList/Svcstatus/withdrawn"
	statusPrefix    = "http://uri.etsi.org/TrstSvc/TrustedList/Svcstatus/"

	ASiForeSignatures = "http://uri.etsi.org/TrstSvc/TrustedList/SvcInfoExt/ForeSignatures"
	ASiForeSeals      = "http://uri.etsi.org/TrstSvc/TrustedList/SvcInfoExt/ForeSeals"
	ASiForWebSiteAuth = "http://uri.etsi.org/TrstSvc/TrustedList/SvcInfoExt/ForWebSiteAuthentication"

	// TypeListOfLists is the TSLType of the EU list of trusted lists.
	TypeListOfLists = "http://uri.etsi.org/TrstSvc/TrustedList/TSLType/EUlistofthelists"
	// MimeTypeTSL marks an XML trusted list in a pointer.
	MimeTypeTSL = "application/vnd.etsi.tsl+xml"
)

// ErrVersion: the list is not a TS 119 612 version 5 or 6 list.
var ErrVersion = errors.New("tsl: unsupported TSL version")

// ErrNotTSL: the document is not a TrustServiceStatusList.
var ErrNotTSL = errors.New("tsl: not a TS 119 612 trusted list")

// List is a parsed trusted list.
type List struct {
	Version        int
	SequenceNumber int
	// Type is the TSLType URI (EUgeneric, EUlistofthelists, CClist...).
	Type string
	// Operator is the scheme operator's name (English when given).
	Operator  string
	Territory string
	IssueDate time.Time
	// NextUpdate is zero for a closed list.
	NextUpdate         time.Time
	DistributionPoints []string
	// Pointers are the PointersToOtherTSL.
	Pointers  []Pointer
	Providers []Provider
	// Warnings are what was skipped while reading (certificates that cannot
	// be parsed, for example).
	Warnings []string
}

// IsListOfLists reports whether the list is a list of lists (the LOTL).
func (l *List) IsListOfLists() bool {
	return l.Type == TypeListOfLists || strings.HasSuffix(strings.ToLower(l.Type), "listofthelists")
}

// ServiceCount is the number of services of all providers.
func (l *List) ServiceCount() int {
	n := 0
	for _, p := range l.Providers {
		n += len(p.Services)
	}
	return n
}

// Pointer points to another trusted list.
type Pointer struct {
	Location  string
	Territory string
	Type      string
	MimeType  string
	// Signers are the certificates allowed to sign the pointed-to list.
	Signers []*x509.Certificate
}

// Provider is a trust service provider.
type Provider struct {
	Name     string
	Services []Service
}

// Service is one trust service: its current status and its history.
type Service struct {
	// Current is the service's current information.
	Current Status
	// History are the earlier statuses, as listed (newest first).
	History []Status
}

// Statuses returns the current status and the history, newest first.
func (s *Service) Statuses() []Status { return append([]Status{s.Current}, s.History...) }

// At returns the status in force at t: the one with the latest starting
// time not after t. ok is false when the service had no status yet.
func (s *Service) At(t time.Time) (Status, bool) {
	var best Status
	found := false
	for _, st := range s.Statuses() {
		if !st.Since.After(t) && (!found || st.Since.After(best.Since)) {
			best, found = st, true
		}
	}
	return best, found
}

// Status is a service's information from a starting time on.
type Status struct {
	Type   string
	Name   string
	Status string
	Since  time.Time
	// Identity is the service digital identity.
	Identity Identity
	// Qualifications are the Qualifications extension's elements.
	Qualifications []Qualification
	// AdditionalInfo are the AdditionalServiceInformation URIs.
	AdditionalInfo []string
}

// Identity is a service digital identity.
type Identity struct {
	Certificates []*x509.Certificate
	SubjectNames []string
	SKIs         [][]byte
}

// Qualification is one QualificationElement: qualifiers that apply to the
// certificates meeting the criteria.
type Qualification struct {
	Qualifiers []string
	Criteria   Criteria
}

// Criteria is a CriteriaList: its criteria combined by Assert.
type Criteria struct {
	// Assert is "all", "atLeastOne" or "none".
	Assert string
	// KeyUsage: each map is one KeyUsage criterion (bit name → value).
	KeyUsage []map[string]bool
	// Policies: each set is one PolicySet (every OID must be present).
	Policies [][]string
	// ExtKeyUsage: each set is one ExtendedKeyUsage criterion.
	ExtKeyUsage [][]string
	// SubjectAttributes: each set is one CertSubjectDNAttribute criterion.
	SubjectAttributes [][]string
	Nested            []Criteria
	// Unsupported counts criteria this package cannot evaluate (they never match).
	Unsupported int
}

// parseList reads the list under root. It is strict on what verification
// relies on (version, dates, identities) and lenient about the rest.
func parseList(root *etree.Element) (*List, error) {
	if !is(root, NSTSL, "TrustServiceStatusList") {
		return nil, fmt.Errorf("%w: root element {%s}%s", ErrNotTSL, ns(root), root.Tag)
	}
	si := child(root, NSTSL, "SchemeInformation")
	if si == nil {
		return nil, fmt.Errorf("%w: no SchemeInformation", ErrNotTSL)
	}
	l := &List{}
	v, err := strconv.Atoi(text(child(si, NSTSL, "TSLVersionIdentifier")))
	if err != nil {
		return nil, fmt.Errorf("%w: TSLVersionIdentifier: %v", ErrNotTSL, err)
	}
	if v != 5 && v != 6 {
		return nil, fmt.Errorf("%w: version %d (want 5 or 6)", ErrVersion, v)
	}
	l.Version = v
	if l.SequenceNumber, err = strconv.Atoi(text(child(si, NSTSL, "TSLSequenceNumber"))); err != nil || l.SequenceNumber < 1 {
		return nil, fmt.Errorf("%w: TSLSequenceNumber %q", ErrNotTSL, text(child(si, NSTSL, "TSLSequenceNumber")))
	}
	l.Type = text(child(si, NSTSL, "TSLType"))
	l.Operator = name(child(si, NSTSL, "SchemeOperatorName"))
	l.Territory = text(child(si, NSTSL, "SchemeTerritory"))
	if l.IssueDate, err = parseTime(text(child(si, NSTSL, "ListIssueDateTime"))); err != nil {
		return nil, fmt.Errorf("%w: ListIssueDateTime: %v", ErrNotTSL, err)
	}
	if nu := path(si, NSTSL, "NextUpdate", "dateTime"); nu != nil {
		if l.NextUpdate, err = parseTime(text(nu)); err != nil {
			return nil, fmt.Errorf("%w: NextUpdate: %v", ErrNotTSL, err)
		}
	}
	for _, u := range children(child(si, NSTSL, "DistributionPoints"), NSTSL, "URI") {
		l.DistributionPoints = append(l.DistributionPoints, text(u))
	}
	for _, p := range children(child(si, NSTSL, "PointersToOtherTSL"), NSTSL, "OtherTSLPointer") {
		ptr, err := parsePointer(p, l.warn)
		if err != nil {
			return nil, err
		}
		l.Pointers = append(l.Pointers, ptr)
	}
	for _, tp := range children(child(root, NSTSL, "TrustServiceProviderList"), NSTSL, "TrustServiceProvider") {
		prov := Provider{Name: name(path(tp, NSTSL, "TSPInformation", "TSPName"))}
		for _, svc := range children(child(tp, NSTSL, "TSPServices"), NSTSL, "TSPService") {
			s, err := parseService(svc, l.warn)
			if err != nil {
				return nil, fmt.Errorf("provider %q: %w", prov.Name, err)
			}
			prov.Services = append(prov.Services, s)
		}
		l.Providers = append(l.Providers, prov)
	}
	return l, nil
}

// maxWarnings bounds the warnings kept for one list.
const maxWarnings = 100

func (l *List) warn(msg string) {
	if len(l.Warnings) < maxWarnings {
		l.Warnings = append(l.Warnings, msg)
	}
}

func parsePointer(p *etree.Element, warn func(string)) (Pointer, error) {
	ptr := Pointer{Location: text(child(p, NSTSL, "TSLLocation"))}
	for _, sdi := range children(child(p, NSTSL, "ServiceDigitalIdentities"), NSTSL, "ServiceDigitalIdentity") {
		id, err := parseIdentity(sdi, warn)
		if err != nil {
			return ptr, fmt.Errorf("pointer to %s: %w", ptr.Location, err)
		}
		ptr.Signers = append(ptr.Signers, id.Certificates...)
	}
	for _, oi := range children(child(p, NSTSL, "AdditionalInformation"), NSTSL, "OtherInformation") {
		for _, c := range oi.ChildElements() {
			switch {
			case is(c, NSTSL, "TSLType"):
				ptr.Type = text(c)
			case is(c, NSTSL, "SchemeTerritory"):
				ptr.Territory = text(c)
			case is(c, NSAdditional, "MimeType"):
				ptr.MimeType = text(c)
			}
		}
	}
	return ptr, nil
}

func parseService(svc *etree.Element, warn func(string)) (Service, error) {
	var s Service
	cur, err := parseStatus(child(svc, NSTSL, "ServiceInformation"), warn)
	if err != nil {
		return s, err
	}
	s.Current = cur
	for _, h := range children(child(svc, NSTSL, "ServiceHistory"), NSTSL, "ServiceHistoryInstance") {
		st, err := parseStatus(h, warn)
		if err != nil {
			return s, fmt.Errorf("service %q, history: %w", cur.Name, err)
		}
		s.History = append(s.History, st)
	}
	return s, nil
}

// parseStatus reads a ServiceInformation or a ServiceHistoryInstance.
func parseStatus(e *etree.Element, warn func(string)) (Status, error) {
	var st Status
	if e == nil {
		return st, fmt.Errorf("%w: a service without ServiceInformation", ErrNotTSL)
	}
	st.Type = text(child(e, NSTSL, "ServiceTypeIdentifier"))
	st.Name = name(child(e, NSTSL, "ServiceName"))
	st.Status = text(child(e, NSTSL, "ServiceStatus"))
	var err error
	if st.Since, err = parseTime(text(child(e, NSTSL, "StatusStartingTime"))); err != nil {
		return st, fmt.Errorf("%w: service %q: StatusStartingTime: %v", ErrNotTSL, st.Name, err)
	}
	if st.Identity, err = parseIdentity(child(e, NSTSL, "ServiceDigitalIdentity"), warn); err != nil {
		return st, fmt.Errorf("service %q: %w", st.Name, err)
	}
	for _, ext := range children(child(e, NSTSL, "ServiceInformationExtensions"), NSTSL, "Extension") {
		for _, c := range ext.ChildElements() {
			switch {
			case is(c, NSTSL, "AdditionalServiceInformation"):
				st.AdditionalInfo = append(st.AdditionalInfo, text(child(c, NSTSL, "URI")))
			case is(c, NSSvcInfoExt, "Qualifications"):
				for _, qe := range children(c, NSSvcInfoExt, "QualificationElement") {
					q := Qualification{Criteria: parseCriteria(child(qe, NSSvcInfoExt, "CriteriaList"), 0)}
					for _, qu := range children(child(qe, NSSvcInfoExt, "Qualifiers"), NSSvcInfoExt, "Qualifier") {
						q.Qualifiers = append(q.Qualifiers, strings.TrimSpace(qu.SelectAttrValue("uri", "")))
					}
					st.Qualifications = append(st.Qualifications, q)
				}
			}
		}
	}
	return st, nil
}

// maxCriteriaDepth bounds nested CriteriaList elements.
const maxCriteriaDepth = 8

func parseCriteria(e *etree.Element, depth int) Criteria {
	c := Criteria{}
	if e == nil {
		c.Unsupported++
		return c
	}
	c.Assert = e.SelectAttrValue("assert", "all")
	for _, k := range e.ChildElements() {
		switch {
		case is(k, NSSvcInfoExt, "KeyUsage"):
			bits := map[string]bool{}
			for _, b := range children(k, NSSvcInfoExt, "KeyUsageBit") {
				bits[b.SelectAttrValue("name", "")] = strings.EqualFold(text(b), "true")
			}
			c.KeyUsage = append(c.KeyUsage, bits)
		case is(k, NSSvcInfoExt, "PolicySet"):
			var set []string
			for _, pi := range children(k, NSSvcInfoExt, "PolicyIdentifier") {
				set = append(set, oidText(text(child(pi, NSXAdES, "Identifier"))))
			}
			c.Policies = append(c.Policies, set)
		case is(k, NSSvcInfoExt, "CriteriaList") && depth < maxCriteriaDepth:
			c.Nested = append(c.Nested, parseCriteria(k, depth+1))
		case is(k, NSSvcInfoExt, "otherCriteriaList"):
			for _, o := range k.ChildElements() {
				var set []string
				for _, id := range o.ChildElements() {
					set = append(set, oidText(text(id)))
				}
				switch o.Tag {
				case "ExtendedKeyUsage":
					c.ExtKeyUsage = append(c.ExtKeyUsage, set)
				case "CertSubjectDNAttribute":
					c.SubjectAttributes = append(c.SubjectAttributes, set)
				default:
					c.Unsupported++
				}
			}
		case k.Tag == "Description":
		default:
			c.Unsupported++
		}
	}
	return c
}

// oidText strips the urn:oid: prefix of an OID written as a URN.
func oidText(s string) string {
	s = strings.TrimSpace(s)
	if len(s) > 8 && strings.EqualFold(s[:8], "urn:oid:") {
		return s[8:]
	}
	return s
}

// maxIdentityCerts bounds the certificates of one digital identity.
const maxIdentityCerts = 64

// parseIdentity reads a ServiceDigitalIdentity. A certificate Go cannot
// parse is skipped with a warning (real lists hold a few, e.g. with negative
// serial numbers); such a service then matches nothing.
func parseIdentity(sdi *etree.Element, warn func(string)) (Identity, error) {
	var id Identity
	for _, d := range children(sdi, NSTSL, "DigitalId") {
		for _, c := range d.ChildElements() {
			switch {
			case is(c, NSTSL, "X509Certificate"):
				if len(id.Certificates) >= maxIdentityCerts {
					return id, fmt.Errorf("%w: more than %d certificates in one digital identity", ErrNotTSL, maxIdentityCerts)
				}
				der, err := base64.StdEncoding.DecodeString(stripSpace(text(c)))
				if err != nil {
					return id, fmt.Errorf("%w: X509Certificate: %v", ErrNotTSL, err)
				}
				cert, err := x509.ParseCertificate(der)
				if err != nil {
					warn(fmt.Sprintf("a service digital identity certificate was skipped: %v", err))
					continue
				}
				id.Certificates = append(id.Certificates, cert)
			case is(c, NSTSL, "X509SubjectName"):
				id.SubjectNames = append(id.SubjectNames, text(c))
			case is(c, NSTSL, "X509SKI"):
				if ski, err := base64.StdEncoding.DecodeString(stripSpace(text(c))); err == nil {
					id.SKIs = append(id.SKIs, ski)
				}
			}
		}
	}
	return id, nil
}

// name returns the English Name child (else the first) of a multilingual name.
func name(e *etree.Element) string {
	names := children(e, NSTSL, "Name")
	for _, n := range names {
		if lang := n.SelectAttrValue("xml:lang", ""); lang == "en" {
			return text(n)
		}
	}
	if len(names) > 0 {
		return text(names[0])
	}
	return ""
}

// parseTime reads an xsd:dateTime; without a zone it is UTC.
func parseTime(s string) (time.Time, error) {
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return t.UTC(), nil
	}
	t, err := time.Parse("2006-01-02T15:04:05", s)
	if err != nil {
		return time.Time{}, fmt.Errorf("not an xsd:dateTime: %q", s)
	}
	return t.UTC(), nil
}

func stripSpace(s string) string {
	return strings.Map(func(r rune) rune {
		if r == ' ' || r == '\n' || r == '\r' || r == '\t' {
			return -1
		}
		return r
	}, s)
}
