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
	officer := auth.Principal{Roles: []policies.Role{policies.RoleRegistrationOfficer}}
	tsaUnit := &x509.Certificate{Subject: pkix.Name{CommonName: "TSA unit"}, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageTimeStamping}}
	responder := &x509.Certificate{Subject: pkix.Name{CommonName: "OCSP"}, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageOCSPSigning}}
	cmpServer := &x509.Certificate{Subject: pkix.Name{CommonName: "CMP"}, UnknownExtKeyUsage: []asn1.ObjectIdentifier{{1, 3, 6, 1, 5, 5, 7, 3, 28}}}
	caCert := &x509.Certificate{Subject: pkix.Name{CommonName: "CA"}, IsCA: true}
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
		// The service's own certificates are revoked on the host (thiqa revoke), not by an officer's token.
		{"officer, the TSA unit", officer, tsaUnit, false},
		{"officer, an OCSP responder", officer, responder, false},
		{"officer, the CMP server", officer, cmpServer, false},
		{"officer, a CA", officer, caCert, false},
		{"officer, a citizen's", officer, citizenCert, true},
	} {
		if got := mayRevoke(&c.p, c.cert); got != c.want {
			t.Errorf("%s: %v, want %v", c.name, got, c.want)
		}
	}
}
