package ca

import (
	"bytes"
	"crypto/x509"
	"crypto/x509/pkix"
	"fmt"
	"slices"
	"sort"
	"strings"

	zx509 "github.com/zmap/zcrypto/x509"
	"github.com/zmap/zlint/v3"
	"github.com/zmap/zlint/v3/lint"

	"github.com/thiqa/thiqa/policies"
)

// LintSources are the zlint sources run before issuance. These are not
// web-server certificates, so the CA/Browser Forum, Mozilla, Apple and
// Chrome sources do not apply; RFC 5280 (with RFC 5480 and RFC 8813 for EC
// keys) and ETSI ESI (EN 319 412-5 QC statements) do.
func LintSources() lint.SourceList {
	return lint.SourceList{lint.RFC5280, lint.RFC5480, lint.RFC8813, lint.EtsiEsi}
}

// ExcludedLints returns the zlint lints of those sources that are switched
// off, each with its reason. None is needed for the profiles shipped: the
// list exists so that an exclusion is always explicit and documented here.
func ExcludedLints() map[string]string { return map[string]string{} }

// LintError refuses issuance: the certificate built for the request failed
// the named lints (zlint names, or thiqa_* for the profile's own rules).
type LintError struct {
	// Lints are the names of the failed lints, sorted.
	Lints []string
	// Details gives each failed lint's explanation, same order.
	Details []string
}

// Error implements the error interface.
func (e *LintError) Error() string {
	return "certificate failed pre-issuance lints: " + strings.Join(e.Lints, ", ")
}

// Linter runs zlint and the profile's own checks on a certificate.
type Linter struct {
	registry lint.Registry
	own      []profileLint
}

// NewLinter builds the filtered zlint registry once.
func NewLinter() (*Linter, error) {
	excl := []string{}
	for n := range ExcludedLints() {
		excl = append(excl, n)
	}
	reg, err := lint.GlobalRegistry().Filter(lint.FilterOptions{IncludeSources: LintSources(), ExcludeNames: excl})
	if err != nil {
		return nil, fmt.Errorf("building the zlint registry: %w", err)
	}
	return &Linter{registry: reg, own: profileLints()}, nil
}

// expectation is what the certificate must hold according to the profile.
type expectation struct {
	profile *policies.Profile
	subject []byte // DER of the validated subject name
	email   string
	qcExt   []byte // encoded qcStatements, nil when none
	issuer  *x509.Certificate
}

// lint runs zlint (sources LintSources) and the profile lints on der.
// Findings at warning level or above refuse: a qualified CA treats a SHOULD
// as binding. It returns the parsed certificate on success.
func (l *Linter) lint(der []byte, want expectation) (*x509.Certificate, error) {
	le := &LintError{}
	fail := func(name, detail string) {
		le.Lints = append(le.Lints, name)
		le.Details = append(le.Details, detail)
	}
	zc, err := zx509.ParseCertificate(der)
	if err != nil {
		return nil, &LintError{Lints: []string{"thiqa_parse_zcrypto"}, Details: []string{err.Error()}}
	}
	rs := zlint.LintCertificateEx(zc, l.registry)
	names := make([]string, 0, len(rs.Results))
	for n := range rs.Results {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		if r := rs.Results[n]; r.Status >= lint.Warn {
			fail(n, fmt.Sprintf("%s: %s", r.Status, r.Details))
		}
	}
	c, err := x509.ParseCertificate(der)
	if err != nil {
		fail("thiqa_parse_go", err.Error())
		return nil, le
	}
	for _, chk := range l.own {
		if msg := chk.check(c, want); msg != "" {
			fail(chk.name, msg)
		}
	}
	if len(le.Lints) > 0 {
		return nil, le
	}
	return c, nil
}

type profileLint struct {
	name  string
	check func(c *x509.Certificate, w expectation) string
}

// profileLints check the built certificate against the profile, so that a
// mistake in template building can never reach a signature.
func profileLints() []profileLint {
	return []profileLint{
		{"thiqa_subject_is_validated", func(c *x509.Certificate, w expectation) string {
			if !bytes.Equal(c.RawSubject, w.subject) {
				return "subject differs from the validated request fields"
			}
			return ""
		}},
		{"thiqa_not_ca", func(c *x509.Certificate, _ expectation) string {
			if c.IsCA || !c.BasicConstraintsValid {
				return "end-entity certificate must carry basicConstraints cA=false"
			}
			return ""
		}},
		{"thiqa_key_usage", func(c *x509.Certificate, w expectation) string {
			if c.KeyUsage != w.profile.KeyUsage {
				return fmt.Sprintf("keyUsage %b, profile wants %b", c.KeyUsage, w.profile.KeyUsage)
			}
			return ""
		}},
		{"thiqa_ext_key_usage", func(c *x509.Certificate, w expectation) string {
			if !slices.Equal(c.ExtKeyUsage, w.profile.ExtKeyUsage) || len(c.UnknownExtKeyUsage) != len(w.profile.ExtKeyUsageOIDs) {
				return "extendedKeyUsage differs from the profile"
			}
			for _, e := range c.Extensions {
				if e.Id.Equal([]int{2, 5, 29, 37}) && e.Critical != w.profile.ExtKeyUsageCritical {
					return "extendedKeyUsage criticality differs from the profile"
				}
			}
			return ""
		}},
		{"thiqa_policies", func(c *x509.Certificate, w expectation) string {
			if len(c.Policies) != len(w.profile.Policies) {
				return "certificatePolicies differ from the profile"
			}
			for i, o := range w.profile.Policies {
				if c.Policies[i].String() != o.String() {
					return fmt.Sprintf("policy %d is %s, profile wants %s", i, c.Policies[i], o)
				}
			}
			return ""
		}},
		{"thiqa_qc_statements", func(c *x509.Certificate, w expectation) string {
			var got []byte
			for _, e := range c.Extensions {
				if e.Id.Equal(policies.MustOID(policies.OIDExtQCStatements)) {
					if e.Critical {
						return "qcStatements must not be critical"
					}
					got = e.Value
				}
			}
			if !bytes.Equal(got, w.qcExt) {
				return "qcStatements differ from the profile"
			}
			return ""
		}},
		{"thiqa_validity", func(c *x509.Certificate, w expectation) string {
			if d := c.NotAfter.Sub(c.NotBefore); d <= 0 || d >= w.profile.Validity {
				return fmt.Sprintf("validity %s outside the profile's %s", d, w.profile.Validity)
			}
			if c.NotAfter.After(w.issuer.NotAfter) || c.NotBefore.Before(w.issuer.NotBefore) {
				return "validity not nested in the issuing CA's"
			}
			return ""
		}},
		{"thiqa_serial", func(c *x509.Certificate, _ expectation) string {
			if c.SerialNumber.Sign() <= 0 || c.SerialNumber.BitLen() < 64 || len(c.SerialNumber.Bytes()) > 20 {
				return "serial must be positive, at least 64 bits and at most 20 octets"
			}
			return ""
		}},
		{"thiqa_email", func(c *x509.Certificate, w expectation) string {
			if len(c.DNSNames)+len(c.IPAddresses)+len(c.URIs) > 0 || (w.email == "") != (len(c.EmailAddresses) == 0) ||
				(w.email != "" && (len(c.EmailAddresses) != 1 || c.EmailAddresses[0] != w.email)) {
				return "subjectAltName differs from the validated email"
			}
			return ""
		}},
		{"thiqa_ocsp_nocheck", func(c *x509.Certificate, w expectation) string {
			has := slices.ContainsFunc(c.Extensions, func(e pkix.Extension) bool { return e.Id.Equal(policies.MustOID(policies.OIDExtOCSPNoCheck)) })
			if has != w.profile.OCSPNoCheck {
				return "id-pkix-ocsp-nocheck presence differs from the profile"
			}
			return ""
		}},
	}
}
