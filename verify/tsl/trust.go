package tsl

import (
	"bytes"
	"crypto/x509"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/thiqa/thiqa/verify/report"
)

// Usage says what a certificate is validated for.
type Usage int

// Usages.
const (
	// ForSignatures: e-signatures and e-seals (CA/QC services).
	ForSignatures Usage = iota
	// ForTimestamps: time-stamp tokens (TSA/QTST services, and the CA/QC
	// services for the paths of TSA certificates).
	ForTimestamps
)

// Loaded is one list that passed Check, with where it came from.
type Loaded struct {
	Location string
	List     *List
	Result   *Result
}

// Trust is a set of verified trusted lists indexed for path validation and
// qualification. It is immutable and safe for concurrent use.
type Trust struct {
	lists     []Loaded
	bySubject map[string][]*entry
	bySKI     map[string][]*entry
	services  int
}

// entry is one service of one list.
type entry struct {
	src      *Loaded
	provider string
	service  *Service
	// certs are the service's digital identity certificates (all statuses).
	certs []*x509.Certificate
	// types are the service types of all its statuses.
	types []string
}

// NewTrust indexes lists that passed Check.
func NewTrust(lists ...Loaded) *Trust {
	t := &Trust{lists: lists, bySubject: map[string][]*entry{}, bySKI: map[string][]*entry{}}
	for i := range t.lists {
		src := &t.lists[i]
		for pi := range src.List.Providers {
			p := &src.List.Providers[pi]
			for si := range p.Services {
				s := &p.Services[si]
				e := &entry{src: src, provider: p.Name, service: s}
				for _, st := range s.Statuses() {
					if !slices.Contains(e.types, st.Type) {
						e.types = append(e.types, st.Type)
					}
					for _, c := range st.Identity.Certificates {
						if !slices.ContainsFunc(e.certs, c.Equal) {
							e.certs = append(e.certs, c)
							t.bySubject[string(c.RawSubject)] = append(t.bySubject[string(c.RawSubject)], e)
						}
					}
					for _, ski := range st.Identity.SKIs {
						t.bySKI[string(ski)] = append(t.bySKI[string(ski)], e)
					}
				}
				t.services++
			}
		}
	}
	return t
}

// Lists returns the lists of the set.
func (t *Trust) Lists() []Loaded { return t.lists }

// ServiceCount is the number of services indexed.
func (t *Trust) ServiceCount() int { return t.services }

func (e *entry) anchorFor(u Usage) bool {
	for _, ty := range e.types {
		if ty == SvcTypeCAQC || (u == ForTimestamps && ty == SvcTypeTSAQTST) {
			return true
		}
	}
	return false
}

// AnchorsFor returns the trust anchors that may have issued one of certs:
// the digital identities of CA/QC services (and TSA/QTST services for
// timestamps) whose subject is the issuer of a given certificate, or the
// certificate itself (a TSA unit listed as its own service).
func (t *Trust) AnchorsFor(u Usage, certs []*x509.Certificate) []*x509.Certificate {
	if t == nil {
		return nil
	}
	var out []*x509.Certificate
	add := func(key []byte) {
		for _, e := range t.bySubject[string(key)] {
			if !e.anchorFor(u) {
				continue
			}
			for _, c := range e.certs {
				if bytes.Equal(c.RawSubject, key) && !slices.ContainsFunc(out, c.Equal) {
					out = append(out, c)
				}
			}
		}
	}
	for _, c := range certs {
		add(c.RawIssuer)
		if u == ForTimestamps {
			add(c.RawSubject)
		}
	}
	return out
}

// servicesFor returns the services whose digital identity is one of certs:
// the same subject and public key (a re-issued CA certificate matches), or
// an SKI-only identity equal to the certificate's key identifier.
func (t *Trust) servicesFor(certs []*x509.Certificate) []*entry {
	var out []*entry
	for _, c := range certs {
		for _, e := range t.bySubject[string(c.RawSubject)] {
			for _, sc := range e.certs {
				if bytes.Equal(sc.RawSubjectPublicKeyInfo, c.RawSubjectPublicKeyInfo) && !slices.Contains(out, e) {
					out = append(out, e)
				}
			}
		}
		if len(c.SubjectKeyId) > 0 {
			for _, e := range t.bySKI[string(c.SubjectKeyId)] {
				if !slices.Contains(out, e) {
					out = append(out, e)
				}
			}
		}
	}
	return out
}

// eIDAS is when Regulation (EU) 910/2014 took over from Directive 1999/93/EC.
var eIDAS = time.Date(2016, 7, 1, 0, 0, 0, 0, time.UTC)

// preEIDASGranted are the statuses TS 119 612 v1 lists used for what
// "granted" means since eIDAS.
var preEIDASGranted = map[string]bool{
	statusPrefix + "undersupervision":       true,
	statusPrefix + "supervisionincessation": true,
	statusPrefix + "accredited":             true,
	statusPrefix + "setbynationallaw":       true,
}

func grantedAt(st Status, at time.Time) bool {
	return st.Status == StatusGranted || (at.Before(eIDAS) && preEIDASGranted[st.Status])
}

func shortURI(u string) string {
	if i := strings.LastIndexAny(u, "/#"); i >= 0 && i < len(u)-1 {
		return u[i+1:]
	}
	return u
}

func describe(e *entry, st Status, qualifiers []string) *report.TrustedListService {
	return &report.TrustedListService{
		Location: e.src.Location, Territory: e.src.List.Territory, SequenceNumber: e.src.List.SequenceNumber,
		Provider: e.provider, Service: st.Name, ServiceType: st.Type, Status: st.Status, StatusStarting: st.Since,
		Qualifiers: qualifiers, AdditionalServiceInformation: st.AdditionalInfo,
	}
}

// Verdict is the outcome of the qualification procedure.
type Verdict struct {
	// Qualified: a qualified certificate for e-signatures or e-seals (for
	// ForTimestamps: a qualified time-stamp service).
	Qualified bool
	// QSCD: the private key is in a qualified signature creation device.
	QSCD bool
	// Types: esign, eseal, web.
	Types []string
	// Detail says how, for the report.
	Detail *report.Qualification
}

// Qualify applies ETSI TS 119 615 to a validated path (anchor first, the
// certificate last) at time at: the best signing time for a signature, the
// token's time for a timestamp.
func (t *Trust) Qualify(u Usage, chain []*x509.Certificate, at time.Time) Verdict {
	if len(chain) == 0 {
		return Verdict{Detail: &report.Qualification{Status: report.QualificationUnknown, Reason: "no certificate"}}
	}
	if t == nil {
		return Verdict{Detail: &report.Qualification{Status: report.QualificationUnknown, Reason: "no trusted list"}}
	}
	leaf := chain[len(chain)-1]
	cas := chain[:len(chain)-1]
	if u == ForTimestamps {
		cas = chain
	}
	matches := t.servicesFor(cas)
	if u == ForTimestamps {
		return t.qualifyTimestamp(matches, at)
	}
	q := &report.Qualification{Status: report.QualificationNotQualified, Certificate: Claims(leaf)}
	if len(matches) == 0 {
		q.Reason = "no trusted list names the certificate's issuer"
		return Verdict{Types: q.Certificate.QcTypes, Detail: q}
	}
	var results []Verdict
	for _, e := range matches {
		results = append(results, qualifyWith(e, leaf, q.Certificate, at))
	}
	best := results[0]
	for _, r := range results {
		if r.Qualified {
			best = r
			break
		}
	}
	for _, r := range results {
		if d := r.Detail; d.Status != best.Detail.Status && d.TrustedList != nil {
			best.Detail.Warnings = append(best.Detail.Warnings, fmt.Sprintf("another listed service (%s, %s) gives %s: %s",
				d.TrustedList.Service, d.TrustedList.Territory, d.Status, d.Reason))
		}
	}
	if !best.Qualified {
		best.Types = q.Certificate.QcTypes
	}
	return best
}

func (t *Trust) qualifyTimestamp(matches []*entry, at time.Time) Verdict {
	q := &report.Qualification{Status: report.QualificationNotQualified, Reason: "no trusted list names the TSA as a qualified time-stamp service"}
	for _, e := range matches {
		st, ok := e.service.At(at)
		if !ok || st.Type != SvcTypeTSAQTST {
			continue
		}
		q.TrustedList = describe(e, st, nil)
		if grantedAt(st, at) {
			q.Status, q.Reason, q.QualifiedFrom = report.QualificationQualified, "", report.FromTrustedList
			return Verdict{Qualified: true, Detail: q}
		}
		q.Reason = fmt.Sprintf("the time-stamp service's status at %s is %s", at.UTC().Format(time.RFC3339), shortURI(st.Status))
	}
	return Verdict{Detail: q}
}

// qualifyWith determines the qualification of leaf under one service.
func qualifyWith(e *entry, leaf *x509.Certificate, claims *report.CertificateClaims, at time.Time) Verdict {
	q := &report.Qualification{Status: report.QualificationNotQualified, Certificate: claims}
	issued := leaf.NotBefore
	stIssue, okIssue := e.service.At(issued)
	st, ok := e.service.At(at)
	if !ok {
		cur := e.service.Current
		q.TrustedList = describe(e, cur, nil)
		q.Reason = fmt.Sprintf("the service was not yet listed at %s", at.UTC().Format(time.RFC3339))
		return Verdict{Detail: q}
	}
	var qualifiers []string
	for i := range st.Qualifications {
		if st.Qualifications[i].Criteria.matches(leaf) {
			for _, qu := range st.Qualifications[i].Qualifiers {
				if !slices.Contains(qualifiers, qu) {
					qualifiers = append(qualifiers, qu)
				}
			}
		}
	}
	q.TrustedList = describe(e, st, qualifiers)
	has := func(names ...string) bool {
		for _, qu := range qualifiers {
			if slices.Contains(names, shortURI(qu)) {
				return true
			}
		}
		return false
	}
	switch {
	case st.Type != SvcTypeCAQC:
		q.Reason = fmt.Sprintf("the listed service is of type %s, not CA/QC", shortURI(st.Type))
		return Verdict{Detail: q}
	case !grantedAt(st, at):
		q.Reason = fmt.Sprintf("the service's status at %s is %s", at.UTC().Format(time.RFC3339), shortURI(st.Status))
		return Verdict{Detail: q}
	case !okIssue || !grantedAt(stIssue, issued) || stIssue.Type != SvcTypeCAQC:
		q.Reason = fmt.Sprintf("the service was not a granted CA/QC when the certificate was issued (%s)", issued.UTC().Format(time.RFC3339))
		return Verdict{Detail: q}
	}
	// QC: the certificate's QcCompliance (or a pre-eIDAS QC policy), unless
	// a qualifier says otherwise.
	qc := claims.QcCompliance || (issued.Before(eIDAS) && (hasPolicy(leaf, oidQCPPublic) || hasPolicy(leaf, oidQCPPublicSSCD)))
	q.QualifiedFrom = report.FromCertificate
	switch {
	case has("NotQualified"):
		qc, q.QualifiedFrom = false, report.FromTrustedList
	case has("QCStatement"):
		qc, q.QualifiedFrom = true, report.FromTrustedList
	}
	if !qc {
		q.Reason = "neither the certificate (QcCompliance) nor the trusted list says it is qualified"
		if q.QualifiedFrom == report.FromTrustedList {
			q.Reason = "the trusted list says the certificate is not qualified (NotQualified)"
		}
		return Verdict{Detail: q}
	}
	// QSCD.
	qscd := claims.QcSSCD || (issued.Before(eIDAS) && hasPolicy(leaf, oidQCPPublicSSCD))
	q.QSCDFrom = report.FromCertificate
	switch {
	case has("QCWithSSCD", "QCWithQSCD", "QCQSCDManagedOnBehalf"):
		qscd, q.QSCDFrom = true, report.FromTrustedList
	case has("QCNoSSCD", "QCNoQSCD"):
		qscd, q.QSCDFrom = false, report.FromTrustedList
	}
	// Type: qualifiers, else the certificate's QcType, else what the
	// service issues when that is one type, else e-signature (EN 319 412-5:
	// no QcType means esign).
	types := slices.Clone(claims.QcTypes)
	q.TypeFrom = report.FromCertificate
	var tlTypes []string
	for qu, ty := range map[string]string{"QCForESig": "esign", "QCForESeal": "eseal", "QCForWSA": "web"} {
		if has(qu) {
			tlTypes = append(tlTypes, ty)
		}
	}
	if len(tlTypes) > 0 {
		slices.Sort(tlTypes)
		types, q.TypeFrom = tlTypes, report.FromTrustedList
	}
	asi := map[string]bool{}
	for _, a := range st.AdditionalInfo {
		switch a {
		case ASiForeSignatures:
			asi["esign"] = true
		case ASiForeSeals:
			asi["eseal"] = true
		case ASiForWebSiteAuth:
			asi["web"] = true
		}
	}
	if len(types) == 0 {
		q.TypeFrom = report.FromTrustedList
		switch {
		case len(asi) == 1:
			for ty := range asi {
				types = []string{ty}
			}
		default:
			types = []string{"esign"}
			q.Warnings = append(q.Warnings, "the certificate has no QcType: taken as an e-signature certificate (EN 319 412-5)")
		}
	}
	if len(asi) > 0 {
		types = slices.DeleteFunc(types, func(ty string) bool { return !asi[ty] })
		if len(types) == 0 {
			q.Reason = "the service issues qualified certificates only for other uses (additional service information: " +
				strings.Join(shortAll(st.AdditionalInfo), ", ") + ")"
			return Verdict{Detail: q}
		}
	}
	if !slices.Contains(types, "esign") && !slices.Contains(types, "eseal") {
		q.Reason = "a qualified certificate for website authentication, not for e-signatures or e-seals"
		return Verdict{Detail: q}
	}
	q.Status, q.Reason = report.QualificationQualified, ""
	return Verdict{Qualified: true, QSCD: qscd, Types: types, Detail: q}
}

func shortAll(uris []string) []string {
	out := make([]string, len(uris))
	for i, u := range uris {
		out[i] = shortURI(u)
	}
	return out
}
