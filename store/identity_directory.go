package store

// The identity provider's view of the credentials the CA issued: a
// citizen's enrolled mobile ID with its certificate, and the certificate of
// a credential (identity.Directory, identity.Credentials).

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"

	"github.com/thiqa/thiqa/ca"
	"github.com/thiqa/thiqa/identity"
)

var (
	_ identity.Directory   = (*Identity)(nil)
	_ identity.Credentials = (*Identity)(nil)
)

// RemoteCredential returns the citizen's enrolled mobile ID credential
// (the newest with a PIN set) and its current certificate, or an error
// wrapping identity.ErrNotFound.
func (s *Identity) RemoteCredential(ctx context.Context, civilNumber string) (*identity.RemoteCredential, error) {
	id, err := s.MobileCredentialID(ctx, civilNumber)
	if err != nil {
		return nil, err
	}
	rec, err := s.IssuedCredential(ctx, id)
	if err != nil {
		return nil, err
	}
	return &identity.RemoteCredential{ID: id, Certificate: rec.Certificate}, nil
}

// RemoteCredentials returns the citizen's enrolled mobile ID credentials
// with a PIN set, newest enrolment first, each with its current
// certificate, or an error wrapping identity.ErrNotFound
// (identity.Directory). The civil number is stored without its country:
// the provider skips the certificates of another country's number.
func (s *Identity) RemoteCredentials(ctx context.Context, civilNumber string) ([]*identity.RemoteCredential, error) {
	ids, err := s.MobileCredentialIDs(ctx, civilNumber)
	if err != nil {
		return nil, err
	}
	out := make([]*identity.RemoteCredential, 0, len(ids))
	for _, id := range ids {
		rec, err := s.IssuedCredential(ctx, id)
		if errors.Is(err, identity.ErrNotFound) {
			continue // no certificate: it can log no one in
		}
		if err != nil {
			return nil, err
		}
		out = append(out, &identity.RemoteCredential{ID: id, Certificate: rec.Certificate})
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("store: mobile ID of a citizen: none with a certificate: %w", identity.ErrNotFound)
	}
	return out, nil
}

// IssuedCredential returns the current certificate issued for a credential
// key, or an error wrapping identity.ErrNotFound.
func (s *Identity) IssuedCredential(ctx context.Context, credentialID string) (*identity.IssuedCredential, error) {
	rec, err := s.db.Certificates(nil).CertificateByCredential(ctx, credentialID)
	if errors.Is(err, ca.ErrNotFound) {
		return nil, fmt.Errorf("credential %s has no certificate: %w", credentialID, identity.ErrNotFound)
	}
	if err != nil {
		return nil, err
	}
	cert, err := x509.ParseCertificate(rec.DER)
	if err != nil {
		return nil, fmt.Errorf("credential %s: %w", credentialID, err)
	}
	return &identity.IssuedCredential{Certificate: cert, Profile: rec.Profile, Serial: rec.Serial}, nil
}

// CredentialKeyLabel returns the label of the key on the token that the
// credential's current certificate names (after a re-key, not the
// credential ID), or "" when it names none: the credential ID is the label.
func (c *Certificates) CredentialKeyLabel(ctx context.Context, credentialID string) (string, error) {
	rec, err := c.CertificateByCredential(ctx, credentialID)
	if err != nil {
		return "", err
	}
	return rec.KeyLabel, nil
}
