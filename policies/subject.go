package policies

import (
	"crypto/x509/pkix"
	"errors"
	"fmt"
	"net/mail"
	"slices"
	"strings"
	"unicode"
	"unicode/utf8"
)

// The subject fields a certificate request may carry (JSON keys of "subject").
const (
	FieldGivenName              = "givenName"
	FieldSurname                = "surname"
	FieldCommonName             = "commonName"
	FieldCivilNumber            = "civilNumber"
	FieldCountry                = "country"
	FieldEmail                  = "email"
	FieldOrganizationName       = "organizationName"
	FieldOrganizationIdentifier = "organizationIdentifier"
)

var knownFields = []string{
	FieldGivenName, FieldSurname, FieldCommonName, FieldCivilNumber, FieldCountry,
	FieldEmail, FieldOrganizationName, FieldOrganizationIdentifier,
}

// Upper bounds from RFC 5280 Appendix A (ub-*), in characters.
const (
	ubCommonName       = 64
	ubOrganizationName = 64
	ubName             = 32768 // givenName and surname are X520name
	ubSerialNumber     = 64
	ubEmail            = 254 // RFC 5321 path limit; rfc822Name has no ASN.1 bound
	ubOrgIdentifier    = 64  // X.520 ub-organization-identifier is not fixed; same as organizationName
)

// SubjectError reports a missing, unexpected or malformed subject field.
type SubjectError struct {
	// Field is the JSON key of the offending field.
	Field string
	// Reason says what is wrong with it.
	Reason string
}

// Error implements the error interface.
func (e *SubjectError) Error() string {
	return fmt.Sprintf("subject field %q: %s", e.Field, e.Reason)
}

// SubjectConfig is the serialisable form of SubjectRules.
type SubjectConfig struct {
	// Required lists the fields every request must carry.
	Required []string `yaml:"required"`
	// Optional lists the fields a request may carry.
	Optional []string `yaml:"optional"`
	// CivilNumberMinLength and CivilNumberMaxLength bound the digits of a civil number (default 6-12).
	CivilNumberMinLength int `yaml:"civilNumberMinLength"`
	CivilNumberMaxLength int `yaml:"civilNumberMaxLength"`
	// OrganizationIdentifierTypes lists the accepted 3-letter identity type
	// references of EN 319 412-1 §5.1.4 (NTR, VAT, PSD, LEI); default NTR.
	OrganizationIdentifierTypes []string `yaml:"organizationIdentifierTypes"`
	// RegistrationNumberMaxLength bounds the registration number after "NTRCC-" (default 30).
	RegistrationNumberMaxLength int `yaml:"registrationNumberMaxLength"`
	// Countries restricts the country field. Empty means every ISO 3166
	// alpha-2 code, except for a natural-person profile of a deployment
	// that knows its country (SubjectRules.HomeCountry): only that one.
	Countries []string `yaml:"countries"`
}

// SubjectRules is the validated rule set for a profile's subject.
type SubjectRules struct {
	Required, Optional          []string
	CivilNumberMin              int
	CivilNumberMax              int
	OrgIdentifierTypes          []string
	RegistrationNumberMaxLength int
	// Countries lists the countries accepted; empty: every country, or
	// HomeCountry alone when it is set.
	Countries []string
	// HomeCountry is the deployment's country, set on the natural-person
	// profiles that list no Countries (ProfileSet.WithHomeCountry): a
	// civil number is vouched for by its own country's CA only, so such
	// a profile issues to HomeCountry alone. Empty: no default.
	HomeCountry string
}

func (c SubjectConfig) validate() (SubjectRules, error) {
	r := SubjectRules{
		Required: slices.Clone(c.Required), Optional: slices.Clone(c.Optional),
		CivilNumberMin: c.CivilNumberMinLength, CivilNumberMax: c.CivilNumberMaxLength,
		OrgIdentifierTypes: slices.Clone(c.OrganizationIdentifierTypes), RegistrationNumberMaxLength: c.RegistrationNumberMaxLength,
		Countries: slices.Clone(c.Countries),
	}
	if len(r.Required) == 0 {
		return r, errors.New("no required fields")
	}
	seen := map[string]bool{}
	for _, f := range append(slices.Clone(r.Required), r.Optional...) {
		if !slices.Contains(knownFields, f) {
			return r, fmt.Errorf("unknown field %q", f)
		}
		if seen[f] {
			return r, fmt.Errorf("field %q listed twice", f)
		}
		seen[f] = true
	}
	for _, f := range []string{FieldCommonName, FieldCountry} {
		if !slices.Contains(r.Required, f) {
			return r, fmt.Errorf("%s must be required", f)
		}
	}
	if r.CivilNumberMin == 0 && r.CivilNumberMax == 0 {
		r.CivilNumberMin, r.CivilNumberMax = 6, 12
	}
	// IDC + CC + "-" takes 6 of the 64 characters of serialNumber.
	if r.CivilNumberMin < 1 || r.CivilNumberMax < r.CivilNumberMin || r.CivilNumberMax > ubSerialNumber-6 {
		return r, fmt.Errorf("civil number length range %d-%d is invalid", r.CivilNumberMin, r.CivilNumberMax)
	}
	if len(r.OrgIdentifierTypes) == 0 {
		r.OrgIdentifierTypes = []string{"NTR"}
	}
	for _, t := range r.OrgIdentifierTypes {
		if len(t) != 3 || strings.ToUpper(t) != t || !isASCIIAlnum(t) {
			return r, fmt.Errorf("organisation identifier type %q must be three upper-case letters", t)
		}
	}
	if r.RegistrationNumberMaxLength == 0 {
		r.RegistrationNumberMaxLength = 30
	}
	if r.RegistrationNumberMaxLength < 1 || r.RegistrationNumberMaxLength > ubOrgIdentifier-6 {
		return r, fmt.Errorf("registrationNumberMaxLength %d is invalid", r.RegistrationNumberMaxLength)
	}
	for _, cc := range r.Countries {
		if !IsCountryCode(cc) {
			return r, fmt.Errorf("country %q is not an ISO 3166 alpha-2 code", cc)
		}
	}
	return r, nil
}

// Subject holds validated subject fields. Empty strings are absent fields.
type Subject struct {
	GivenName              string
	Surname                string
	CommonName             string
	CivilNumber            string
	Country                string
	Email                  string
	OrganizationName       string
	OrganizationIdentifier string
}

// SerialNumber returns the serialNumber attribute: for a natural person the
// EN 319 412-1 §5.1.3 semantics "IDC" + country + "-" + civil number, else "".
func (s Subject) SerialNumber() string {
	if s.CivilNumber == "" {
		return ""
	}
	return "IDC" + s.Country + "-" + s.CivilNumber
}

// CheckSerialNumber checks named, the serialNumber attribute a request's
// own subject carries (an RA's CSR or CMP certTemplate, read back into
// fields by the CA), against the one s makes: s takes its country from
// the request's C and its civil number from that serialNumber, so a
// serialNumber of another country (IDCAE-123 under C=OM) names another
// person than the certificate would (IDCOM-123). The refusal is a
// *SubjectError on the country. An empty named, or a subject without a
// civil number, has nothing to check.
func (s Subject) CheckSerialNumber(named string) error {
	if named == "" || s.CivilNumber == "" || named == s.SerialNumber() {
		return nil
	}
	return &SubjectError{Field: FieldCountry, Reason: fmt.Sprintf(
		"the request's serialNumber %s does not name a civil number of its country %s (want %s): "+
			"a request names one person, by C and serialNumber IDC<C>-<number> together", named, s.Country, s.SerialNumber())}
}

// Name builds the distinguished name: C, O, organizationIdentifier,
// givenName, surname, serialNumber, CN. The email address is not part of the
// name: it belongs in subjectAltName (RFC 5280 §4.1.2.6).
func (s Subject) Name() pkix.Name {
	n := pkix.Name{CommonName: s.CommonName, SerialNumber: s.SerialNumber()}
	n.Country = []string{s.Country}
	if s.OrganizationName != "" {
		n.Organization = []string{s.OrganizationName}
	}
	add := func(oid, v string) {
		if v != "" {
			n.ExtraNames = append(n.ExtraNames, pkix.AttributeTypeAndValue{Type: MustOID(oid), Value: v})
		}
	}
	// ExtraNames replace the standard fields when marshalled, so every
	// attribute goes there, in a fixed order.
	n.ExtraNames = nil
	add("2.5.4.6", s.Country)
	add("2.5.4.10", s.OrganizationName)
	add(OIDAttrOrganizationIdentifier, s.OrganizationIdentifier)
	add(OIDAttrGivenName, s.GivenName)
	add(OIDAttrSurname, s.Surname)
	add("2.5.4.5", s.SerialNumber())
	add("2.5.4.3", s.CommonName)
	return n
}

// SubjectErrors lists every problem ValidateSubject found in a request's
// subject, in a stable order: fields not allowed (sorted), required fields
// missing (in the profile's order), then malformed values (in the order of
// the known fields). errors.As finds the first as a *SubjectError.
type SubjectErrors []*SubjectError

// Error implements the error interface.
func (e SubjectErrors) Error() string {
	parts := make([]string, len(e))
	for i, se := range e {
		parts[i] = se.Error()
	}
	return strings.Join(parts, "; ")
}

// Unwrap returns each problem, so that errors.As reaches them.
func (e SubjectErrors) Unwrap() []error {
	out := make([]error, len(e))
	for i, se := range e {
		out[i] = se
	}
	return out
}

// ValidateSubject checks the request's subject fields against the profile:
// every required field present, no field outside required and optional,
// each value well-formed. It reports every problem at once, as
// SubjectErrors (errors.As also finds the first as a *SubjectError).
func (p *Profile) ValidateSubject(fields map[string]string) (Subject, error) {
	r := p.Subject
	var problems SubjectErrors
	var extra []string
	for k := range fields {
		if !slices.Contains(r.Required, k) && !slices.Contains(r.Optional, k) {
			extra = append(extra, k)
		}
	}
	slices.Sort(extra)
	for _, k := range extra {
		problems = append(problems, &SubjectError{Field: k, Reason: fmt.Sprintf("not allowed in profile %s", p.Name)})
	}
	missing := map[string]bool{}
	for _, k := range r.Required {
		if fields[k] == "" {
			missing[k] = true
			problems = append(problems, &SubjectError{Field: k, Reason: "missing"})
		}
	}
	var s Subject
	for _, k := range knownFields {
		v, ok := fields[k]
		if !ok || missing[k] || slices.Contains(extra, k) {
			continue
		}
		if err := r.checkField(p.Name, k, v); err != nil {
			problems = append(problems, &SubjectError{Field: k, Reason: err.Error()})
			continue
		}
		switch k {
		case FieldGivenName:
			s.GivenName = v
		case FieldSurname:
			s.Surname = v
		case FieldCommonName:
			s.CommonName = v
		case FieldCivilNumber:
			s.CivilNumber = v
		case FieldCountry:
			s.Country = v
		case FieldEmail:
			s.Email = v
		case FieldOrganizationName:
			s.OrganizationName = v
		case FieldOrganizationIdentifier:
			s.OrganizationIdentifier = v
		}
	}
	if len(problems) > 0 {
		return Subject{}, problems
	}
	return s, nil
}

// checkField checks field k's value v against the rules of profile name.
func (r SubjectRules) checkField(name, k, v string) error {
	switch k {
	case FieldGivenName, FieldSurname:
		return checkText(v, ubName)
	case FieldCommonName:
		return checkText(v, ubCommonName)
	case FieldOrganizationName:
		return checkText(v, ubOrganizationName)
	case FieldCountry:
		if !IsCountryCode(v) {
			return errors.New("must be an upper-case ISO 3166 alpha-2 country code")
		}
		return r.checkCountry(name, v)
	case FieldCivilNumber:
		if len(v) < r.CivilNumberMin || len(v) > r.CivilNumberMax || !isDigits(v) {
			return fmt.Errorf("must be %d to %d digits", r.CivilNumberMin, r.CivilNumberMax)
		}
	case FieldEmail:
		return checkEmail(v)
	case FieldOrganizationIdentifier:
		return r.checkOrgIdentifier(v)
	}
	return nil
}

// checkCountry checks a well-formed country v against the profile's
// countries: its list, else its home country, else any.
func (r SubjectRules) checkCountry(name, v string) error {
	switch {
	case len(r.Countries) > 0 && !slices.Contains(r.Countries, v):
		return fmt.Errorf("country %s is not accepted by profile %s, which issues to %s only (ca.profiles.countries.%s)",
			v, name, strings.Join(r.Countries, ", "), name)
	case len(r.Countries) == 0 && r.HomeCountry != "" && v != r.HomeCountry:
		return fmt.Errorf("country %s is not accepted by profile %s, which issues to %s only, the deployment's country: "+
			"a civil number of %s is not one this CA vouches for. To issue to other countries, "+
			"list every country the profile may issue to in ca.profiles.countries (%s: [%s, %s])",
			v, name, r.HomeCountry, v, name, r.HomeCountry, v)
	}
	return nil
}

// checkOrgIdentifier checks EN 319 412-1 §5.1.4: 3-letter type reference,
// 2-letter ISO 3166 country code, "-", registration number.
func (r SubjectRules) checkOrgIdentifier(v string) error {
	want := fmt.Sprintf("%s + country + \"-\" + registration number", strings.Join(r.OrgIdentifierTypes, "|"))
	if len(v) < 7 || v[5] != '-' {
		return fmt.Errorf("must be %s (e.g. NTROM-1234567)", want)
	}
	if !slices.Contains(r.OrgIdentifierTypes, v[:3]) {
		return fmt.Errorf("identity type %q not accepted; must be %s", v[:3], want)
	}
	if !IsCountryCode(v[3:5]) {
		return fmt.Errorf("%q is not an ISO 3166 alpha-2 country code", v[3:5])
	}
	reg := v[6:]
	if len(reg) > r.RegistrationNumberMaxLength {
		return fmt.Errorf("registration number longer than %d characters", r.RegistrationNumberMaxLength)
	}
	for _, c := range reg {
		if !(c >= '0' && c <= '9' || c >= 'A' && c <= 'Z' || c == '-' || c == '/' || c == '.') {
			return errors.New("registration number may only hold digits, upper-case letters, '-', '/', '.'")
		}
	}
	if !isASCIIAlnum(reg[:1]) || !isASCIIAlnum(reg[len(reg)-1:]) {
		return errors.New("registration number must start and end with a letter or digit")
	}
	return nil
}

// checkText accepts valid UTF-8 of printable characters (letters of any
// script, marks, digits, punctuation, the ASCII space), at most max
// characters, without leading, trailing or doubled spaces.
func checkText(v string, max int) error {
	if !utf8.ValidString(v) {
		return errors.New("not valid UTF-8")
	}
	if n := utf8.RuneCountInString(v); n > max {
		return fmt.Errorf("longer than %d characters (RFC 5280 upper bound)", max)
	}
	for _, c := range v {
		if !unicode.IsPrint(c) {
			return fmt.Errorf("contains the non-printable character %U", c)
		}
	}
	if strings.TrimSpace(v) != v || strings.Contains(v, "  ") {
		return errors.New("leading, trailing or doubled spaces")
	}
	return nil
}

// checkEmail accepts a bare ASCII addr-spec local@domain (rfc822Name is an IA5String).
func checkEmail(v string) error {
	if len(v) > ubEmail {
		return fmt.Errorf("longer than %d characters", ubEmail)
	}
	for i := 0; i < len(v); i++ {
		if v[i] <= 0x20 || v[i] >= 0x7f {
			return errors.New("must be a plain ASCII address local@domain")
		}
	}
	a, err := mail.ParseAddress(v)
	if err != nil || a.Address != v || a.Name != "" {
		return errors.New("must be a plain address local@domain")
	}
	local, domain, ok := strings.Cut(v, "@")
	if !ok || local == "" || !strings.Contains(domain, ".") || strings.HasPrefix(domain, ".") ||
		strings.HasSuffix(domain, ".") || strings.Contains(domain, "..") || strings.ContainsAny(domain, "[]") {
		return errors.New("must be a plain address local@domain with a fully qualified domain")
	}
	for _, label := range strings.Split(domain, ".") {
		if len(label) > 63 || strings.HasPrefix(label, "-") || strings.HasSuffix(label, "-") {
			return fmt.Errorf("domain label %q is malformed", label)
		}
		for _, c := range label {
			if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-') {
				return fmt.Errorf("domain label %q is malformed", label)
			}
		}
	}
	return nil
}

func isDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return s != ""
}

func isASCIIAlnum(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= '0' && c <= '9' || c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z') {
			return false
		}
	}
	return s != ""
}
