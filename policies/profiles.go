package policies

import (
	"crypto/x509"
	"encoding/asn1"
	"errors"
	"fmt"
	"math"
	"net/url"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"
)

// Names of the built-in certificate profiles.
const (
	ProfileCitizenSigning   = "citizen-signing"
	ProfileCitizenAuth      = "citizen-auth"
	ProfileOrganisationSeal = "organisation-seal"
	ProfileTSAUnit          = "tsa-unit"
	ProfileOCSPResponder    = "ocsp-responder"
)

// Names of the issuing CAs a profile may be issued by.
const (
	IssuerCitizen      = "citizen"
	IssuerOrganisation = "organisation"
	IssuerTSA          = "tsa"
)

// ErrUnknownProfile is returned (wrapped) for a profile name that is not configured.
var ErrUnknownProfile = errors.New("unknown certificate profile")

// KeyType names a subject key algorithm and size a profile accepts.
type KeyType string

// The key types a profile may allow (TS 119 312 algorithms).
const (
	KeyECDSAP256 KeyType = "ecdsa-p256"
	KeyECDSAP384 KeyType = "ecdsa-p384"
	KeyRSA2048   KeyType = "rsa-2048"
	KeyRSA3072   KeyType = "rsa-3072"
	KeyRSA4096   KeyType = "rsa-4096"
)

var knownKeyTypes = []KeyType{KeyECDSAP256, KeyECDSAP384, KeyRSA2048, KeyRSA3072, KeyRSA4096}

// ProfileConfig is the serialisable form of a certificate profile.
type ProfileConfig struct {
	// Name identifies the profile in requests (e.g. "citizen-signing").
	Name string `yaml:"name"`
	// Issuers lists the issuing CAs allowed to issue it; the first is the default.
	Issuers []string `yaml:"issuers"`
	// KeyUsages: digitalSignature, nonRepudiation (contentCommitment), keyEncipherment, keyAgreement.
	KeyUsages []string `yaml:"keyUsages"`
	// ExtKeyUsages: clientAuth, emailProtection, timeStamping, OCSPSigning, codeSigning (or a
	// dotted OID), each purpose once (by name or by OID).
	ExtKeyUsages []string `yaml:"extKeyUsages"`
	// ExtKeyUsageCritical marks the extendedKeyUsage extension critical.
	ExtKeyUsageCritical bool `yaml:"extKeyUsageCritical"`
	// Policies are certificatePolicies OIDs, in order.
	Policies []string `yaml:"policies"`
	// QCStatements describes the qcStatements extension (EN 319 412-5).
	QCStatements QCStatementsConfig `yaml:"qcStatements"`
	// OCSPNoCheck adds id-pkix-ocsp-nocheck (delegated OCSP responders only).
	OCSPNoCheck bool `yaml:"ocspNoCheck"`
	// Validity is the certificate lifetime: a Go duration or a number of days ("730d").
	Validity string `yaml:"validity"`
	// CryptoPeriod is how long one key may be certified under the profile,
	// counted from its first certificate ("1460d"; empty: no limit): a
	// renewal with the same key is refused when the renewed certificate
	// would outlive it, and the key must be replaced (re-key).
	CryptoPeriod string `yaml:"cryptoPeriod,omitempty"`
	// KeyTypes lists the accepted subject keys (ecdsa-p256, ecdsa-p384, rsa-2048, rsa-3072, rsa-4096).
	KeyTypes []string `yaml:"keyTypes"`
	// Subject says which request fields are required or allowed and how they are checked.
	Subject SubjectConfig `yaml:"subject"`
}

// QCStatementsConfig is the serialisable form of QCStatements.
type QCStatementsConfig struct {
	// Compliance adds QcCompliance (EU qualified certificate).
	Compliance bool `yaml:"compliance"`
	// SSCD adds QcSSCD (private key in a qualified signature creation device).
	SSCD bool `yaml:"sscd"`
	// Types lists QcType values: esign, eseal, web, or dotted OIDs.
	Types []string `yaml:"types"`
	// PDS lists PKI disclosure statement locations (https URL, ISO 639-1 language).
	PDS []PDSLocation `yaml:"pds"`
	// Semantics is the EN 319 412-1 semantics identifier: "natural", "legal" or empty.
	Semantics string `yaml:"semantics"`
}

// PDSLocation is one PdsLocation of QcPDS: SEQUENCE { url IA5String, language PrintableString (SIZE(2)) }.
type PDSLocation struct {
	// URL is where the PKI disclosure statement is published (https).
	URL string `yaml:"url"`
	// Language is its ISO 639-1 language code, lower case.
	Language string `yaml:"language"`
}

// QCStatements is the validated content of the qcStatements extension.
type QCStatements struct {
	Compliance bool
	SSCD       bool
	Types      []asn1.ObjectIdentifier
	PDS        []PDSLocation
	// Semantics is the semantics identifier OID, or nil.
	Semantics asn1.ObjectIdentifier
}

// Empty reports whether no statement is configured.
func (q QCStatements) Empty() bool {
	return !q.Compliance && !q.SSCD && len(q.Types) == 0 && len(q.PDS) == 0 && q.Semantics == nil
}

// Profile is a validated certificate profile.
type Profile struct {
	// Name identifies the profile.
	Name string
	// Issuers lists the issuing CA names allowed; Issuers[0] is the default.
	Issuers []string
	// KeyUsage is the keyUsage bit set (always marked critical).
	KeyUsage x509.KeyUsage
	// ExtKeyUsage lists the well-known extended key usages.
	ExtKeyUsage []x509.ExtKeyUsage
	// ExtKeyUsageOIDs lists extended key usages Go has no constant for.
	ExtKeyUsageOIDs []asn1.ObjectIdentifier
	// ExtKeyUsageCritical marks extendedKeyUsage critical.
	ExtKeyUsageCritical bool
	// Policies lists certificatePolicies OIDs.
	Policies []asn1.ObjectIdentifier
	// QC is the qcStatements content; empty means no extension.
	QC QCStatements
	// OCSPNoCheck adds id-pkix-ocsp-nocheck.
	OCSPNoCheck bool
	// Validity is the certificate lifetime.
	Validity time.Duration
	// CryptoPeriod bounds the use of one key from its first certificate
	// (0: no limit); see ProfileConfig.CryptoPeriod.
	CryptoPeriod time.Duration
	// KeyTypes lists accepted subject key types.
	KeyTypes []KeyType
	// Subject holds the subject field rules.
	Subject SubjectRules
}

// AllowsKey reports whether the profile accepts key type k.
func (p *Profile) AllowsKey(k KeyType) bool { return slices.Contains(p.KeyTypes, k) }

// AllowsIssuer reports whether the issuing CA named ca may issue this profile.
func (p *Profile) AllowsIssuer(ca string) bool { return slices.Contains(p.Issuers, ca) }

var keyUsageNames = map[string]x509.KeyUsage{
	"digitalSignature":  x509.KeyUsageDigitalSignature,
	"nonRepudiation":    x509.KeyUsageContentCommitment,
	"contentCommitment": x509.KeyUsageContentCommitment,
	"keyEncipherment":   x509.KeyUsageKeyEncipherment,
	"dataEncipherment":  x509.KeyUsageDataEncipherment,
	"keyAgreement":      x509.KeyUsageKeyAgreement,
}

var extKeyUsageNames = map[string]x509.ExtKeyUsage{
	"clientAuth":      x509.ExtKeyUsageClientAuth,
	"emailProtection": x509.ExtKeyUsageEmailProtection,
	"timeStamping":    x509.ExtKeyUsageTimeStamping,
	"OCSPSigning":     x509.ExtKeyUsageOCSPSigning,
	"codeSigning":     x509.ExtKeyUsageCodeSigning,
}

// extKeyUsageOIDs are the OIDs of extKeyUsageNames' purposes (RFC 5280
// §4.2.1.12, RFC 6960 §4.2.2.2), to find one named twice.
var extKeyUsageOIDs = map[x509.ExtKeyUsage]asn1.ObjectIdentifier{
	x509.ExtKeyUsageClientAuth:      {1, 3, 6, 1, 5, 5, 7, 3, 2},
	x509.ExtKeyUsageCodeSigning:     {1, 3, 6, 1, 5, 5, 7, 3, 3},
	x509.ExtKeyUsageEmailProtection: {1, 3, 6, 1, 5, 5, 7, 3, 4},
	x509.ExtKeyUsageTimeStamping:    {1, 3, 6, 1, 5, 5, 7, 3, 8},
	x509.ExtKeyUsageOCSPSigning:     {1, 3, 6, 1, 5, 5, 7, 3, 9},
}

var qcTypeNames = map[string]string{"esign": OIDQcTypeESign, "eseal": OIDQcTypeESeal, "web": "0.4.0.1862.1.6.3"}

// ParseValidity parses a lifetime: a Go duration ("2160h") or whole days ("730d").
func ParseValidity(s string) (time.Duration, error) {
	// maxDays is the longest day count a time.Duration holds (about 292
	// years): a larger one would wrap around.
	const maxDays = int(math.MaxInt64 / int64(24*time.Hour))
	if d, ok := strings.CutSuffix(s, "d"); ok {
		n, err := strconv.Atoi(d)
		if err != nil || n <= 0 {
			return 0, fmt.Errorf("validity %q: want a positive number of days", s)
		}
		if n > maxDays {
			return 0, fmt.Errorf("validity %q: at most %d days", s, maxDays)
		}
		return time.Duration(n) * 24 * time.Hour, nil
	}
	v, err := time.ParseDuration(s)
	if err != nil || v <= 0 {
		return 0, fmt.Errorf("validity %q: want a positive duration such as 730d or 168h", s)
	}
	return v, nil
}

// maxValidity bounds any end-entity certificate lifetime (ten years).
const maxValidity = 10 * 366 * 24 * time.Hour

// Validate turns the configuration into a Profile, refusing anything
// unknown or inconsistent.
func (c ProfileConfig) Validate() (*Profile, error) {
	p, err := c.validate()
	if err != nil {
		return nil, fmt.Errorf("profile %q: %w", c.Name, err)
	}
	return p, nil
}

func (c ProfileConfig) validate() (*Profile, error) {
	if c.Name == "" {
		return nil, errors.New("name is empty")
	}
	p := &Profile{Name: c.Name, ExtKeyUsageCritical: c.ExtKeyUsageCritical, OCSPNoCheck: c.OCSPNoCheck}
	if len(c.Issuers) == 0 {
		return nil, errors.New("no issuers")
	}
	for _, is := range c.Issuers {
		if is == "" || strings.ContainsAny(is, "/. ") {
			return nil, fmt.Errorf("bad issuer name %q", is)
		}
	}
	p.Issuers = slices.Clone(c.Issuers)
	if len(c.KeyUsages) == 0 {
		return nil, errors.New("no keyUsages")
	}
	for _, n := range c.KeyUsages {
		ku, ok := keyUsageNames[n]
		if !ok {
			return nil, fmt.Errorf("unknown key usage %q", n)
		}
		p.KeyUsage |= ku
	}
	// A purpose named twice (by name, or by name and OID) would be put
	// twice in every certificate, and an RA asking for the profile's
	// purposes each once would be refused as asking for others.
	named := map[string]string{}
	for _, n := range c.ExtKeyUsages {
		eku, ok := extKeyUsageNames[n]
		var oid asn1.ObjectIdentifier
		if ok {
			oid = extKeyUsageOIDs[eku]
		} else {
			var err error
			if oid, err = ParseOID(n); err != nil {
				return nil, fmt.Errorf("unknown extended key usage %q", n)
			}
		}
		if prev, dup := named[oid.String()]; dup {
			return nil, fmt.Errorf("extended key usage %q named twice (also as %q)", n, prev)
		}
		named[oid.String()] = n
		if ok {
			p.ExtKeyUsage = append(p.ExtKeyUsage, eku)
			continue
		}
		p.ExtKeyUsageOIDs = append(p.ExtKeyUsageOIDs, oid)
	}
	if c.ExtKeyUsageCritical && len(c.ExtKeyUsages) == 0 {
		return nil, errors.New("extKeyUsageCritical without extKeyUsages")
	}
	if len(c.Policies) == 0 {
		return nil, errors.New("no policies")
	}
	for _, s := range c.Policies {
		oid, err := ParseOID(s)
		if err != nil {
			return nil, err
		}
		if slices.ContainsFunc(p.Policies, oid.Equal) {
			return nil, fmt.Errorf("policy %s listed twice", s)
		}
		p.Policies = append(p.Policies, oid)
	}
	qc, err := c.QCStatements.validate()
	if err != nil {
		return nil, fmt.Errorf("qcStatements: %w", err)
	}
	p.QC = qc
	if p.Validity, err = ParseValidity(c.Validity); err != nil {
		return nil, err
	}
	if p.Validity > maxValidity {
		return nil, fmt.Errorf("validity %s exceeds ten years", c.Validity)
	}
	if c.CryptoPeriod != "" {
		if p.CryptoPeriod, err = ParseValidity(c.CryptoPeriod); err != nil {
			return nil, fmt.Errorf("cryptoPeriod: %w", err)
		}
		if p.CryptoPeriod < p.Validity {
			return nil, fmt.Errorf("cryptoPeriod %s is shorter than the validity %s: no certificate would fit in it", c.CryptoPeriod, c.Validity)
		}
	}
	if len(c.KeyTypes) == 0 {
		return nil, errors.New("no keyTypes")
	}
	for _, k := range c.KeyTypes {
		if !slices.Contains(knownKeyTypes, KeyType(k)) {
			return nil, fmt.Errorf("unknown key type %q", k)
		}
		p.KeyTypes = append(p.KeyTypes, KeyType(k))
	}
	if p.Subject, err = c.Subject.validate(); err != nil {
		return nil, fmt.Errorf("subject: %w", err)
	}
	switch {
	case qc.Semantics.Equal(MustOID(OIDSemanticsNatural)) && !slices.Contains(p.Subject.Required, FieldCivilNumber):
		return nil, errors.New("natural person semantics identifier needs civilNumber as a required field")
	case qc.Semantics.Equal(MustOID(OIDSemanticsLegal)) && !slices.Contains(p.Subject.Required, FieldOrganizationIdentifier):
		return nil, errors.New("legal person semantics identifier needs organizationIdentifier as a required field")
	}
	if c.OCSPNoCheck && !slices.Contains(p.ExtKeyUsage, x509.ExtKeyUsageOCSPSigning) {
		return nil, errors.New("ocspNoCheck without the OCSPSigning extended key usage")
	}
	return p, nil
}

func (c QCStatementsConfig) validate() (QCStatements, error) {
	q := QCStatements{Compliance: c.Compliance, SSCD: c.SSCD}
	for _, t := range c.Types {
		s, ok := qcTypeNames[t]
		if !ok {
			s = t
		}
		oid, err := ParseOID(s)
		if err != nil {
			return q, fmt.Errorf("unknown QcType %q", t)
		}
		q.Types = append(q.Types, oid)
	}
	if len(q.Types) > 1 {
		return q, errors.New("more than one QcType (EN 319 412-5 §4.2.3 expects one)")
	}
	for i, l := range c.PDS {
		u, err := url.Parse(l.URL)
		if err != nil || u.Scheme != "https" || u.Host == "" {
			return q, fmt.Errorf("pds[%d]: url %q must be an absolute https URL (EN 319 412-5 §4.3.4)", i, l.URL)
		}
		for _, r := range l.URL {
			if r > 0x7e || r < 0x21 {
				return q, fmt.Errorf("pds[%d]: url must be printable ASCII (IA5String)", i)
			}
		}
		if len(l.Language) != 2 || l.Language[0] < 'a' || l.Language[0] > 'z' || l.Language[1] < 'a' || l.Language[1] > 'z' {
			return q, fmt.Errorf("pds[%d]: language %q must be a lower-case ISO 639-1 code", i, l.Language)
		}
		q.PDS = append(q.PDS, l)
	}
	switch c.Semantics {
	case "":
	case "natural":
		q.Semantics = MustOID(OIDSemanticsNatural)
	case "legal":
		q.Semantics = MustOID(OIDSemanticsLegal)
	default:
		return q, fmt.Errorf("unknown semantics %q (want natural or legal)", c.Semantics)
	}
	if (q.SSCD || len(q.Types) > 0 || len(q.PDS) > 0) && !q.Compliance {
		return q, errors.New("ETSI statements without QcCompliance (EN 319 412-5 §5)")
	}
	return q, nil
}

// DefaultsConfig carries the deployment-specific values the default profiles need.
type DefaultsConfig struct {
	// CAPolicyOID is the CA's own certificate policy OID. Empty means
	// PlaceholderCAPolicyOID, a documentation-arc PLACEHOLDER.
	CAPolicyOID string `yaml:"caPolicyOID"`
	// PDSURL is the https URL of the PKI disclosure statement.
	// Empty means a PLACEHOLDER under the example.com documentation domain.
	PDSURL string `yaml:"pdsURL"`
	// PDSLanguage is the ISO 639-1 language of the PDS; "en" when empty.
	PDSLanguage string `yaml:"pdsLanguage"`
	// CryptoPeriods sets the crypto-period of profiles by name (e.g.
	// citizen-signing: 1460d); see ProfileConfig.CryptoPeriod. A profile
	// not listed has no limit.
	CryptoPeriods map[string]string `yaml:"cryptoPeriods,omitempty"`
	// Countries sets the subject countries of profiles by name (e.g.
	// citizen-signing: [OM, AE]); see SubjectConfig.Countries. A
	// natural-person profile not listed issues to the deployment's
	// country only (ProfileSet.WithHomeCountry), any other profile not
	// listed to every country.
	Countries map[string][]string `yaml:"countries,omitempty"`
}

// DefaultProfileConfigs returns the ETSI default profiles: citizen-signing
// (EN 319 412-2, QCP-n-qscd), citizen-auth, organisation-seal (EN 319 412-3,
// QCP-l-qscd), tsa-unit (EN 319 422) and ocsp-responder (RFC 6960).
func DefaultProfileConfigs(d DefaultsConfig) []ProfileConfig {
	if d.CAPolicyOID == "" {
		d.CAPolicyOID = PlaceholderCAPolicyOID
	}
	if d.PDSURL == "" {
		d.PDSURL = "https://pki.example.com/pds/pds-en.pdf" // PLACEHOLDER
	}
	if d.PDSLanguage == "" {
		d.PDSLanguage = "en"
	}
	pds := []PDSLocation{{URL: d.PDSURL, Language: d.PDSLanguage}}
	allKeys := []string{string(KeyECDSAP256), string(KeyECDSAP384), string(KeyRSA2048), string(KeyRSA3072), string(KeyRSA4096)}
	citizen := SubjectConfig{
		Required:             []string{FieldGivenName, FieldSurname, FieldCommonName, FieldCivilNumber, FieldCountry},
		Optional:             []string{FieldEmail},
		CivilNumberMinLength: 6,
		CivilNumberMaxLength: 12,
	}
	organisation := SubjectConfig{
		Required:                    []string{FieldOrganizationName, FieldOrganizationIdentifier, FieldCommonName, FieldCountry},
		OrganizationIdentifierTypes: []string{"NTR"},
	}
	service := SubjectConfig{
		Required:                    []string{FieldCommonName, FieldOrganizationName, FieldCountry},
		Optional:                    []string{FieldOrganizationIdentifier},
		OrganizationIdentifierTypes: []string{"NTR", "VAT"},
	}
	cfgs := []ProfileConfig{
		{
			Name:      ProfileCitizenSigning,
			Issuers:   []string{IssuerCitizen},
			KeyUsages: []string{"nonRepudiation"},
			Policies:  []string{OIDPolicyQCPnQSCD, d.CAPolicyOID},
			QCStatements: QCStatementsConfig{
				Compliance: true, SSCD: true, Types: []string{"esign"}, PDS: pds, Semantics: "natural",
			},
			Validity: "730d",
			KeyTypes: allKeys,
			Subject:  citizen,
		},
		{
			Name:         ProfileCitizenAuth,
			Issuers:      []string{IssuerCitizen},
			KeyUsages:    []string{"digitalSignature"},
			ExtKeyUsages: []string{"clientAuth"},
			Policies:     []string{OIDPolicyNCPPlus, d.CAPolicyOID},
			QCStatements: QCStatementsConfig{Semantics: "natural"},
			Validity:     "730d",
			KeyTypes:     allKeys,
			Subject:      citizen,
		},
		{
			Name:      ProfileOrganisationSeal,
			Issuers:   []string{IssuerOrganisation},
			KeyUsages: []string{"nonRepudiation"},
			Policies:  []string{OIDPolicyQCPlQSCD, d.CAPolicyOID},
			QCStatements: QCStatementsConfig{
				Compliance: true, SSCD: true, Types: []string{"eseal"}, PDS: pds, Semantics: "legal",
			},
			Validity: "1095d",
			KeyTypes: allKeys,
			Subject:  organisation,
		},
		{
			Name:                ProfileTSAUnit,
			Issuers:             []string{IssuerTSA},
			KeyUsages:           []string{"digitalSignature"},
			ExtKeyUsages:        []string{"timeStamping"},
			ExtKeyUsageCritical: true,
			Policies:            []string{d.CAPolicyOID},
			Validity:            "1095d",
			KeyTypes:            allKeys,
			Subject:             service,
		},
		{
			Name:         ProfileOCSPResponder,
			Issuers:      []string{IssuerCitizen, IssuerOrganisation, IssuerTSA},
			KeyUsages:    []string{"digitalSignature"},
			ExtKeyUsages: []string{"OCSPSigning"},
			OCSPNoCheck:  true,
			Policies:     []string{d.CAPolicyOID},
			Validity:     "7d",
			KeyTypes:     allKeys,
			Subject:      service,
		},
	}
	for i := range cfgs {
		cfgs[i].CryptoPeriod = d.CryptoPeriods[cfgs[i].Name]
		cfgs[i].Subject.Countries = slices.Clone(d.Countries[cfgs[i].Name])
	}
	return cfgs
}

// ProfileSet is a validated set of profiles, looked up by name.
type ProfileSet struct {
	byName map[string]*Profile
}

// NewProfileSet validates every configuration; names must be unique.
func NewProfileSet(cfgs []ProfileConfig) (*ProfileSet, error) {
	s := &ProfileSet{byName: make(map[string]*Profile, len(cfgs))}
	for _, c := range cfgs {
		p, err := c.Validate()
		if err != nil {
			return nil, err
		}
		if _, dup := s.byName[p.Name]; dup {
			return nil, fmt.Errorf("profile %q defined twice", p.Name)
		}
		s.byName[p.Name] = p
	}
	if len(s.byName) == 0 {
		return nil, errors.New("no certificate profiles")
	}
	return s, nil
}

// DefaultProfiles returns the validated ETSI default profiles. A
// crypto-period set for a profile that does not exist is an error.
func DefaultProfiles(d DefaultsConfig) (*ProfileSet, error) {
	set, err := NewProfileSet(DefaultProfileConfigs(d))
	if err != nil {
		return nil, err
	}
	for name := range d.CryptoPeriods {
		if _, err := set.Get(name); err != nil {
			return nil, fmt.Errorf("cryptoPeriods: %w", err)
		}
	}
	for name, list := range d.Countries {
		if _, err := set.Get(name); err != nil {
			return nil, fmt.Errorf("countries: %w", err)
		}
		if len(list) == 0 {
			// An empty list would read as "every country" to some and
			// as "none" to others: say which.
			return nil, fmt.Errorf("countries: %s: list at least one country, or leave the profile out", name)
		}
	}
	return set, nil
}

// NaturalPerson reports whether the profile certifies natural persons: its
// semantics identifier is the natural person's (EN 319 412-1 §5.1.3) or it
// requires a civil number.
func (p *Profile) NaturalPerson() bool {
	return p.QC.Semantics.Equal(MustOID(OIDSemanticsNatural)) || slices.Contains(p.Subject.Required, FieldCivilNumber)
}

// WithHomeCountry returns the set as a deployment of country cc applies
// it: each natural-person profile that lists no countries accepts cc
// alone (SubjectRules.HomeCountry); a profile that lists countries, and
// every other profile, is unchanged. An empty cc (a deployment that does
// not know its country: one without a citizen CA, whose root is offline)
// returns s itself.
func (s *ProfileSet) WithHomeCountry(cc string) *ProfileSet {
	if cc == "" {
		return s
	}
	out := &ProfileSet{byName: make(map[string]*Profile, len(s.byName))}
	for name, p := range s.byName {
		if p.NaturalPerson() && len(p.Subject.Countries) == 0 {
			q := *p
			q.Subject.HomeCountry = cc
			p = &q
		}
		out.byName[name] = p
	}
	return out
}

// Get returns the named profile or an error wrapping ErrUnknownProfile.
func (s *ProfileSet) Get(name string) (*Profile, error) {
	p, ok := s.byName[name]
	if !ok {
		return nil, fmt.Errorf("%w %q", ErrUnknownProfile, name)
	}
	return p, nil
}

// Names lists the profile names, sorted.
func (s *ProfileSet) Names() []string {
	out := make([]string, 0, len(s.byName))
	for n := range s.byName {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}

// deviceOnlyPolicies maps each certificate policy that asserts the private
// key is held in a secure device (QSCD or SSCD) to the policy that says the
// same without that claim: QCP-n-qscd → QCP-n, QCP-l-qscd → QCP-l
// (EN 319 411-2 §5.3), NCP+ → NCP (EN 319 411-1 §5.3).
var deviceOnlyPolicies = map[string]string{
	OIDPolicyQCPnQSCD: OIDPolicyQCPn,
	OIDPolicyQCPlQSCD: OIDPolicyQCPl,
	OIDPolicyNCPPlus:  OIDPolicyNCP,
}

// ClaimsKeyDevice reports whether certificates of the profile claim that
// the private key is in a secure device: QcSSCD (EN 319 412-5 §4.2.2), or a
// policy from QCP-n-qscd, QCP-l-qscd, NCP+.
func (p *Profile) ClaimsKeyDevice() bool {
	if p.QC.SSCD {
		return true
	}
	for _, o := range p.Policies {
		if _, ok := deviceOnlyPolicies[o.String()]; ok {
			return true
		}
	}
	return false
}

// WithoutKeyDevice returns the profile as it applies to a key the CA did not
// generate in its own secure device (a key from a CSR: the CA cannot know
// where it lives): no QcSSCD, and each device policy replaced by its
// counterpart without the device (QCP-n-qscd → QCP-n, QCP-l-qscd → QCP-l,
// NCP+ → NCP; a counterpart already listed is not repeated). It returns p
// itself when the profile claims no device.
func (p *Profile) WithoutKeyDevice() *Profile {
	if !p.ClaimsKeyDevice() {
		return p
	}
	q := *p
	q.QC.SSCD = false
	q.Policies = make([]asn1.ObjectIdentifier, 0, len(p.Policies))
	for _, o := range p.Policies {
		if plain, ok := deviceOnlyPolicies[o.String()]; ok {
			o = MustOID(plain)
		}
		if !slices.ContainsFunc(q.Policies, o.Equal) {
			q.Policies = append(q.Policies, o)
		}
	}
	return &q
}
