package ca

import (
	"context"
	"crypto"
	"crypto/x509"
	"errors"
	"fmt"

	"github.com/thiqa/thiqa/policies"
)

// UnitCertifier has a CA certify time-stamping unit keys (the TSA's
// timestamp.Certifier): a tsa-unit certificate, stored and audited like
// every certificate. The CA is opened on first use, so that wiring the TSA
// needs no CA until a unit key is certified. When the CA it opened refuses
// because the root revoked the generation it issues from
// (ErrIssuerRevoked), it opens the CA again and tries once more: after
// `thiqa ca rollover`, the ceremony and `thiqa ca import`, the new
// generation certifies the next unit without a restart.
type UnitCertifier struct {
	// Open opens the CA.
	Open func(ctx context.Context) (*Authority, error)
	// CA names the issuing CA; Subject is the units' subject (policies'
	// field names).
	CA      string
	Subject map[string]string

	authority *Authority
}

// CertifyUnit returns the tsa-unit certificate of pub, issued now or
// before (IssueOnce), and the certificate of the CA that issued it.
func (c *UnitCertifier) CertifyUnit(ctx context.Context, pub crypto.PublicKey, credentialID, actor string) (*x509.Certificate, *x509.Certificate, error) {
	opened := false
	if c.authority == nil {
		if err := c.open(ctx); err != nil {
			return nil, nil, err
		}
		opened = true
	}
	req := Request{
		Profile: policies.ProfileTSAUnit, CA: c.CA, Subject: c.Subject,
		PublicKey: pub, KeyGeneratedByService: true, CredentialID: credentialID, RequestedBy: actor,
	}
	got, err := c.authority.IssueOnce(ctx, req)
	if errors.Is(err, ErrIssuerRevoked) && !opened {
		// The generation this CA issues from is revoked (or the root CRL
		// state unknown): a CA opened now issues from the newest
		// generation in the data folder, rolled over meanwhile.
		if oerr := c.open(ctx); oerr != nil {
			return nil, nil, fmt.Errorf("%w; opening the CA again: %w", err, oerr)
		}
		got, err = c.authority.IssueOnce(ctx, req)
	}
	if err != nil {
		return nil, nil, err
	}
	return got.Certificate, got.Chain[0], nil
}

// open opens the CA (Open) for the certifications that follow.
func (c *UnitCertifier) open(ctx context.Context) error {
	a, err := c.Open(ctx)
	if err != nil {
		return fmt.Errorf("opening the CA: %w", err)
	}
	c.authority = a
	return nil
}
