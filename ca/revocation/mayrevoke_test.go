package revocation

import (
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"testing"

	"github.com/thiqa/thiqa/internal/auth"
	"github.com/thiqa/thiqa/policies"
)

func TestMayRevoke(t *testing.T) {
	citizenCert := &x509.Certificate{Subject: pkix.Name{SerialNumber: "IDCOM-12345678", CommonName: "A"}}
	sealCert := &x509.Certificate{Subject: pkix.Name{CommonName: "Seal", Names: []pkix.AttributeTypeAndValue{
		{Type: asn1.ObjectIdentifier{2, 5, 4, 97}, Value: "NTROM-1234567"}}}}
	for _, c := range []struct {
		name string
		p    auth.Principal
		cert *x509.Certificate
		want bool
	}{
		{"officer, any certificate", auth.Principal{Roles: []policies.Role{policies.RoleRegistrationOfficer}}, sealCert, true},
		{"citizen, own", auth.Principal{Roles: []policies.Role{policies.RoleCitizen}, CivilNumber: "12345678"}, citizenCert, true},
		{"citizen, another's", auth.Principal{Roles: []policies.Role{policies.RoleCitizen}, CivilNumber: "2345678"}, citizenCert, false},
		{"citizen, suffix only", auth.Principal{Roles: []policies.Role{policies.RoleCitizen}, CivilNumber: "5678"}, citizenCert, false},
		{"citizen without civil number", auth.Principal{Roles: []policies.Role{policies.RoleCitizen}}, citizenCert, false},
		{"agency, own seal", auth.Principal{Roles: []policies.Role{policies.RoleAgency}, OrganizationIdentifier: "NTROM-1234567"}, sealCert, true},
		{"agency, another's seal", auth.Principal{Roles: []policies.Role{policies.RoleAgency}, OrganizationIdentifier: "NTROM-7654321"}, sealCert, false},
		{"agency, a citizen's certificate", auth.Principal{Roles: []policies.Role{policies.RoleAgency}, OrganizationIdentifier: "NTROM-1234567"}, citizenCert, false},
		{"operator", auth.Principal{Roles: []policies.Role{policies.RoleOperator}, CivilNumber: "12345678"}, citizenCert, false},
	} {
		if got := mayRevoke(&c.p, c.cert); got != c.want {
			t.Errorf("%s: %v, want %v", c.name, got, c.want)
		}
	}
}
