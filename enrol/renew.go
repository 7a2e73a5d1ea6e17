package enrol

import (
	"context"
	"crypto/x509"

	"github.com/thiqa/thiqa/ca"
	"github.com/thiqa/thiqa/ca/revocation"
	"github.com/thiqa/thiqa/internal/auth"
	"github.com/thiqa/thiqa/policies"
)

// Renewal asks for the successor of a holder's current certificate with a
// new key (CMP kur, EST simplereenroll).
type Renewal struct {
	// Current is the certificate that authenticated the request (checked
	// by Service.Holder) and Record its record.
	Current *x509.Certificate
	Record  *ca.CertificateRecord
	// Key is the new key and its proof of possession.
	Key Key
	// Actor names the holder in the audit log.
	Actor string
}

// Renewer issues a renewal's certificate and supersedes the current one.
type Renewer interface {
	Renew(ctx context.Context, r Renewal) (*ca.Issued, error)
}

// Revoker revokes certificates (*revocation.Service).
type Revoker interface {
	Revoke(ctx context.Context, actor, serial, reasonText string, allow func(*x509.Certificate) bool) (*revocation.Result, error)
}

// CARenewals is the CA's renewal (*ca.Renewer).
type CARenewals interface {
	Renew(ctx context.Context, req ca.RenewRequest) (*ca.Renewed, error)
}

// CARenewer re-enrols through the CA's renewal rules, as
// POST /api/v1/certificates/{serial}/renew does for the holder: the same
// subject and profile, a new key, refused for a revoked or blocked key, a
// certificate renewed once, the replaced one superseded. The holder is
// the caller: a citizen by the civil number of the certificate's subject,
// an agency by its organizationIdentifier.
type CARenewer struct{ Renewals CARenewals }

// Renew implements Renewer.
func (r CARenewer) Renew(ctx context.Context, rn Renewal) (*ca.Issued, error) {
	got, err := r.Renewals.Renew(ctx, ca.RenewRequest{Serial: rn.Record.Serial, CSR: rn.Key.CSR,
		PublicKey: rn.Key.PublicKey, PossessionProvedBy: rn.Key.ProvedBy, Caller: holder(rn)})
	if err != nil {
		return nil, err
	}
	return got.Issued, nil
}

// holder is the principal a certificate's holder is, as mutual TLS would
// make it: what the renewal rules check ownership against.
func holder(rn Renewal) *auth.Principal {
	p := &auth.Principal{Subject: rn.Actor, Method: auth.MethodMTLS, Issuer: rn.Current.Issuer.String(), Certificate: rn.Current}
	if cn := auth.CivilNumber(rn.Current.Subject.SerialNumber); cn != "" {
		p.Roles, p.CivilNumber = append(p.Roles, policies.RoleCitizen), cn
	}
	for _, n := range rn.Current.Subject.Names {
		if v, ok := n.Value.(string); ok && n.Type.String() == policies.OIDAttrOrganizationIdentifier {
			p.Roles, p.OrganizationIdentifier = append(p.Roles, policies.RoleAgency), v
		}
	}
	return p
}
