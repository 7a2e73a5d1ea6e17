package enrol

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"strings"

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

// ErrSameKey refuses a re-enrolment with the current certificate's key.
var ErrSameKey = errors.New("re-enrolment needs a new key")

// IssueRenewer renews by issuing a certificate of the current one's
// profile for its subject (read back from the certificate and validated by
// the profile anew) and revoking the current one as superseded. The key
// compromise block applies twice: the current certificate must not be
// revoked or blocked (Service.Holder) and the new key must not be blocked
// (the CA).
type IssueRenewer struct {
	Issuer  Issuer
	Revoker Revoker
}

// Renew implements Renewer.
func (r IssueRenewer) Renew(ctx context.Context, rn Renewal) (*ca.Issued, error) {
	if rn.Current == nil || rn.Record == nil {
		return nil, &RequestError{Reason: "no current certificate"}
	}
	if pub, err := keyOf(rn.Key); err == nil && publicKeysEqual(pub, rn.Current.PublicKey) {
		return nil, fmt.Errorf("%w: the request's key is the key of certificate %s", ErrSameKey, rn.Record.Serial)
	}
	got, err := r.Issuer.Issue(ctx, ca.Request{Profile: rn.Record.Profile, CA: caOf(rn.Record.CA), Subject: SubjectFields(rn.Current),
		CSR: rn.Key.CSR, PublicKey: rn.Key.PublicKey, PossessionProvedBy: rn.Key.ProvedBy, RequestedBy: rn.Actor})
	if err != nil {
		return nil, err
	}
	if r.Revoker != nil {
		if _, err := r.Revoker.Revoke(context.WithoutCancel(ctx), rn.Actor, rn.Record.Serial, "superseded", nil); err != nil && !errors.Is(err, revocation.ErrAlreadyRevoked) {
			return got, fmt.Errorf("certificate %s issued, but revoking the superseded %s failed: %w", got.Serial, rn.Record.Serial, err)
		}
	}
	return got, nil
}

// caOf is the CA of an issuer name: citizen_2 is the citizen CA's second
// generation, and a renewal goes to the CA's current generation.
func caOf(issuer string) string {
	if i := strings.LastIndexByte(issuer, '_'); i > 0 {
		if n := issuer[i+1:]; n != "" && strings.Trim(n, "0123456789") == "" {
			return issuer[:i]
		}
	}
	return issuer
}

func keyOf(k Key) (any, error) {
	if k.PublicKey != nil {
		return k.PublicKey, nil
	}
	csr, err := ParseCSR(k.CSR)
	if err != nil {
		return nil, err
	}
	return csr.PublicKey, nil
}

// ParseCSR reads a PEM or DER PKCS #10 request (its signature unchecked).
func ParseCSR(b []byte) (*x509.CertificateRequest, error) {
	return x509.ParseCertificateRequest(b)
}

func publicKeysEqual(a, b any) bool {
	ae, ok := a.(interface{ Equal(x any) bool })
	if !ok {
		return false
	}
	return ae.Equal(b)
}

// SubjectFields reads a certificate's subject back into the request fields
// of the API (policies' field names), for the profile to validate anew.
func SubjectFields(c *x509.Certificate) map[string]string {
	fields := map[string]string{}
	for _, n := range c.Subject.Names {
		v, ok := n.Value.(string)
		if !ok {
			continue
		}
		switch n.Type.String() {
		case "2.5.4.6":
			fields[policies.FieldCountry] = v
		case "2.5.4.10":
			fields[policies.FieldOrganizationName] = v
		case policies.OIDAttrOrganizationIdentifier:
			fields[policies.FieldOrganizationIdentifier] = v
		case policies.OIDAttrGivenName:
			fields[policies.FieldGivenName] = v
		case policies.OIDAttrSurname:
			fields[policies.FieldSurname] = v
		case "2.5.4.5":
			if cn := auth.CivilNumber(v); cn != "" {
				fields[policies.FieldCivilNumber] = cn
			}
		case "2.5.4.3":
			fields[policies.FieldCommonName] = v
		}
	}
	if len(c.EmailAddresses) > 0 {
		fields[policies.FieldEmail] = c.EmailAddresses[0]
	}
	return fields
}
