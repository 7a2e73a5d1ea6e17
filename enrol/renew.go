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
	// KeepCurrent leaves the current certificate valid until the holder
	// confirms the new one (Supersede) or the renewal is withdrawn
	// (Withdraw): a CMP key update without implicit confirmation.
	KeepCurrent bool
}

// Renewer issues a renewal's certificate and supersedes the current one
// (at once, or with Supersede once the new one is confirmed).
type Renewer interface {
	Renew(ctx context.Context, r Renewal) (*ca.Issued, error)
	// Supersede revokes the certificate the renewal by serial replaced
	// (superseded) and returns its serial, "" when serial renews nothing.
	Supersede(ctx context.Context, actor, serial string) (string, error)
	// Withdraw withdraws the renewal by serial (its certificate revoked):
	// the certificate it replaced stays as it was and may be renewed
	// again. It returns that certificate's serial, "" when serial renews
	// nothing.
	Withdraw(ctx context.Context, serial string) (string, error)
}

// Revoker revokes certificates (*revocation.Service).
type Revoker interface {
	Revoke(ctx context.Context, actor, serial, reasonText string, allow func(*x509.Certificate) bool) (*revocation.Result, error)
}

// CARenewals is the CA's renewal (*ca.Renewer).
type CARenewals interface {
	Renew(ctx context.Context, req ca.RenewRequest) (*ca.Renewed, error)
	Supersede(ctx context.Context, actor, serial string) (string, error)
	Withdraw(ctx context.Context, serial string) (string, error)
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
		PublicKey: rn.Key.PublicKey, PossessionProvedBy: rn.Key.ProvedBy, KeepReplaced: rn.KeepCurrent, Caller: holder(rn)})
	if err != nil {
		return nil, err
	}
	return got.Issued, nil
}

// Supersede implements Renewer.
func (r CARenewer) Supersede(ctx context.Context, actor, serial string) (string, error) {
	return r.Renewals.Supersede(ctx, actor, serial)
}

// Withdraw implements Renewer.
func (r CARenewer) Withdraw(ctx context.Context, serial string) (string, error) {
	return r.Renewals.Withdraw(ctx, serial)
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
