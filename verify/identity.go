package verify

import (
	"crypto/x509"
	"encoding/asn1"
	"strings"

	"github.com/thiqa/thiqa/verify/report"
	"github.com/thiqa/thiqa/verify/tsl"
)

var (
	oidQCStatements   = asn1.ObjectIdentifier{1, 3, 6, 1, 5, 5, 7, 1, 3}
	oidOrgIdentifier  = asn1.ObjectIdentifier{2, 5, 4, 97}
	oidSerialNumber   = asn1.ObjectIdentifier{2, 5, 4, 5}
	oidSemanticsLegal = "0.4.0.194121.1.2"
)

type qcStatement struct {
	ID   asn1.ObjectIdentifier
	Info asn1.RawValue `asn1:"optional"`
}

// signerOf describes a certificate for the report.
func signerOf(c *x509.Certificate) *report.Signer {
	if c == nil {
		return nil
	}
	s := &report.Signer{
		Name:              c.Subject.String(),
		CommonName:        c.Subject.CommonName,
		Issuer:            c.Issuer.String(),
		CertificateSerial: c.SerialNumber.Text(16),
		NotBefore:         c.NotBefore.UTC(),
		NotAfter:          c.NotAfter.UTC(),
	}
	if len(c.Subject.Organization) > 0 {
		s.Organization = c.Subject.Organization[0]
	}
	if len(c.Subject.Country) > 0 {
		s.Country = c.Subject.Country[0]
	}
	for _, atv := range c.Subject.Names {
		v, _ := atv.Value.(string)
		switch {
		case atv.Type.Equal(oidOrgIdentifier):
			s.OrganizationIdentifier = v
			s.LegalPerson = true
		case atv.Type.Equal(oidSerialNumber):
			s.SerialNumberAttribute = v
			// EN 319 412-1 semantics: IDCxx-<number> is a national identity card number,
			// PASxx- a passport, PNOxx- a national personal number, TINxx- a tax number.
			for _, p := range []string{"IDC", "PNO", "PAS", "TIN"} {
				if strings.HasPrefix(v, p) && len(v) > 6 && v[5] == '-' {
					s.CivilNumber = v[6:]
				}
			}
		}
	}
	for _, e := range c.Extensions {
		if !e.Id.Equal(oidQCStatements) {
			continue
		}
		var stmts []qcStatement
		if _, err := asn1.Unmarshal(e.Value, &stmts); err != nil {
			continue
		}
		for _, st := range stmts {
			if st.ID.String() == "1.3.6.1.5.5.7.11.2" { // id-qcs-pkixQCSyntax-v2 with semantics
				var si struct {
					ID asn1.ObjectIdentifier `asn1:"optional"`
				}
				if _, err := asn1.Unmarshal(st.Info.FullBytes, &si); err == nil && si.ID.String() == oidSemanticsLegal {
					s.LegalPerson = true
				}
			}
		}
	}
	// What the certificate claims is no qualification: only a trusted list
	// (ETSI TS 119 615) turns it into one (qualifySigner).
	claims := tsl.Claims(c)
	s.QCTypes = claims.QcTypes
	s.Qualification = &report.Qualification{Status: report.QualificationUnknown, Reason: noTrustedList, Certificate: claims}
	return s
}

// notQualifiedYet is the reason a qualification stays unknown when trusted
// lists are configured but the signature failed before its certificate path
// was validated.
const notQualifiedYet = "the signature did not validate far enough for the trusted lists to be consulted"

// describeSigner is signerOf, with the reason an unknown qualification
// gives when trusted lists are configured (qualifySigner replaces it once
// the path is validated).
func (v *Verifier) describeSigner(c *x509.Certificate) *report.Signer {
	s := signerOf(c)
	if s != nil && v.opts.TrustedLists != nil {
		s.Qualification.Reason = notQualifiedYet
	}
	return s
}
