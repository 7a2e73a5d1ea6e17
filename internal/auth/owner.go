package auth

import (
	"crypto/x509"

	"github.com/thiqa/thiqa/policies"
)

// OwnsCertificate reports whether c names p as its subject: a citizen the
// civil number of the subject's serialNumber (IDC<country>-<number>, of
// p.CivilCountry when it is known), an agency the subject's
// organizationIdentifier. Services ask it before they
// let a citizen or an agency act on their own certificate (revoke, renew).
func (p *Principal) OwnsCertificate(c *x509.Certificate) bool {
	if p == nil || c == nil {
		return false
	}
	if p.Has(policies.RoleCitizen) && p.CivilNumber != "" && CivilNumberIn(p.CivilCountry, c.Subject.SerialNumber) == p.CivilNumber {
		return true
	}
	if p.Has(policies.RoleAgency) && p.OrganizationIdentifier != "" {
		for _, n := range c.Subject.Names {
			if v, ok := n.Value.(string); ok && n.Type.Equal(oidOrganizationIdentifier) && v == p.OrganizationIdentifier {
				return true
			}
		}
	}
	return false
}
