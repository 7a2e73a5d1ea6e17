package tsl

import (
	"crypto/x509"
	"encoding/asn1"
	"slices"

	"github.com/thiqa/thiqa/verify/report"
)

var oidQCStatements = asn1.ObjectIdentifier{1, 3, 6, 1, 5, 5, 7, 1, 3}

// QC statement and policy identifiers (EN 319 412-5, TS 101 456).
const (
	oidQcCompliance = "0.4.0.1862.1.1"
	oidQcSSCD       = "0.4.0.1862.1.4"
	oidQcType       = "0.4.0.1862.1.6"
	// Pre-eIDAS qualified certificate policies (ETSI TS 101 456): QCP
	// public + SSCD and QCP public.
	oidQCPPublicSSCD = "0.4.0.1456.1.1"
	oidQCPPublic     = "0.4.0.1456.1.2"
)

var qcTypeNames = map[string]string{"0.4.0.1862.1.6.1": "esign", "0.4.0.1862.1.6.2": "eseal", "0.4.0.1862.1.6.3": "web"}

type qcStatement struct {
	ID   asn1.ObjectIdentifier
	Info asn1.RawValue `asn1:"optional"`
}

// Claims returns what a certificate says about itself in its QC statements
// (QcCompliance, QcSSCD, QcType). It is no proof of qualification.
func Claims(c *x509.Certificate) *report.CertificateClaims {
	cl := &report.CertificateClaims{}
	for _, e := range c.Extensions {
		if !e.Id.Equal(oidQCStatements) {
			continue
		}
		var stmts []qcStatement
		if _, err := asn1.Unmarshal(e.Value, &stmts); err != nil {
			continue
		}
		for _, st := range stmts {
			switch st.ID.String() {
			case oidQcCompliance:
				cl.QcCompliance = true
			case oidQcSSCD:
				cl.QcSSCD = true
			case oidQcType:
				var types []asn1.ObjectIdentifier
				if _, err := asn1.Unmarshal(st.Info.FullBytes, &types); err == nil {
					for _, t := range types {
						if n, ok := qcTypeNames[t.String()]; ok && !slices.Contains(cl.QcTypes, n) {
							cl.QcTypes = append(cl.QcTypes, n)
						}
					}
				}
			}
		}
	}
	return cl
}

// hasPolicy reports whether c carries the certificate policy oid.
func hasPolicy(c *x509.Certificate, oid string) bool {
	for _, p := range c.PolicyIdentifiers {
		if p.String() == oid {
			return true
		}
	}
	for _, p := range c.Policies {
		if p.String() == oid {
			return true
		}
	}
	return false
}

var keyUsageBits = map[string]x509.KeyUsage{
	"digitalSignature": x509.KeyUsageDigitalSignature,
	"nonRepudiation":   x509.KeyUsageContentCommitment,
	"keyEncipherment":  x509.KeyUsageKeyEncipherment,
	"dataEncipherment": x509.KeyUsageDataEncipherment,
	"keyAgreement":     x509.KeyUsageKeyAgreement,
	"keyCertSign":      x509.KeyUsageCertSign,
	"crlSign":          x509.KeyUsageCRLSign,
	"encipherOnly":     x509.KeyUsageEncipherOnly,
	"decipherOnly":     x509.KeyUsageDecipherOnly,
}

var extKeyUsageOIDs = map[x509.ExtKeyUsage]string{
	x509.ExtKeyUsageAny:             "2.5.29.37.0",
	x509.ExtKeyUsageServerAuth:      "1.3.6.1.5.5.7.3.1",
	x509.ExtKeyUsageClientAuth:      "1.3.6.1.5.5.7.3.2",
	x509.ExtKeyUsageCodeSigning:     "1.3.6.1.5.5.7.3.3",
	x509.ExtKeyUsageEmailProtection: "1.3.6.1.5.5.7.3.4",
	x509.ExtKeyUsageTimeStamping:    "1.3.6.1.5.5.7.3.8",
	x509.ExtKeyUsageOCSPSigning:     "1.3.6.1.5.5.7.3.9",
}

// matches evaluates a CriteriaList against a certificate (TS 119 612
// §5.5.9.2): each criterion is true or false; assert combines them. A list
// without criteria, or a criterion this package cannot evaluate, matches
// nothing.
func (cr *Criteria) matches(c *x509.Certificate) bool {
	var results []bool
	for _, bits := range cr.KeyUsage {
		ok := len(bits) > 0
		for name, want := range bits {
			bit, known := keyUsageBits[name]
			if !known || (c.KeyUsage&bit != 0) != want {
				ok = false
			}
		}
		results = append(results, ok)
	}
	for _, set := range cr.Policies {
		ok := len(set) > 0
		for _, oid := range set {
			ok = ok && hasPolicy(c, oid)
		}
		results = append(results, ok)
	}
	for _, set := range cr.ExtKeyUsage {
		have := map[string]bool{}
		for _, u := range c.ExtKeyUsage {
			have[extKeyUsageOIDs[u]] = true
		}
		for _, u := range c.UnknownExtKeyUsage {
			have[u.String()] = true
		}
		ok := len(set) > 0
		for _, oid := range set {
			ok = ok && have[oid]
		}
		results = append(results, ok)
	}
	for _, set := range cr.SubjectAttributes {
		have := map[string]bool{}
		for _, n := range c.Subject.Names {
			have[n.Type.String()] = true
		}
		ok := len(set) > 0
		for _, oid := range set {
			ok = ok && have[oid]
		}
		results = append(results, ok)
	}
	for i := range cr.Nested {
		results = append(results, cr.Nested[i].matches(c))
	}
	for range cr.Unsupported {
		results = append(results, false)
	}
	if len(results) == 0 {
		return false
	}
	switch cr.Assert {
	case "atLeastOne":
		return slices.Contains(results, true)
	case "none":
		return !slices.Contains(results, true)
	default: // "all"
		return !slices.Contains(results, false)
	}
}
