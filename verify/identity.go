package verify

import (
	"crypto/x509"
	"encoding/asn1"
	"strings"

	"github.com/thiqa/thiqa/verify/report"
)

var (
	oidQCStatements   = asn1.ObjectIdentifier{1, 3, 6, 1, 5, 5, 7, 1, 3}
	oidOrgIdentifier  = asn1.ObjectIdentifier{2, 5, 4, 97}
	oidSerialNumber   = asn1.ObjectIdentifier{2, 5, 4, 5}
	oidQcCompliance   = "0.4.0.1862.1.1"
	oidQcSSCD         = "0.4.0.1862.1.4"
	oidQcType         = "0.4.0.1862.1.6"
	oidSemanticsLegal = "0.4.0.194121.1.2"
	qcTypeNames       = map[string]string{"0.4.0.1862.1.6.1": "esign", "0.4.0.1862.1.6.2": "eseal", "0.4.0.1862.1.6.3": "web"}
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
			switch st.ID.String() {
			case oidQcCompliance:
				s.Qualified = true
			case oidQcSSCD:
				s.QSCD = true
			case oidQcType:
				var types []asn1.ObjectIdentifier
				if _, err := asn1.Unmarshal(st.Info.FullBytes, &types); err == nil {
					for _, t := range types {
						if n, ok := qcTypeNames[t.String()]; ok {
							s.QCTypes = append(s.QCTypes, n)
						}
					}
				}
			case "0.4.0.194121.1.1", oidSemanticsLegal, "0.4.0.194121.1.3":
			}
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
	return s
}
