package ca

import (
	"context"
	"crypto"
	"crypto/x509"
	"fmt"

	"github.com/thiqa/thiqa/policies"
)

// UnitCertifier has a CA certify time-stamping unit keys (the TSA's
// timestamp.Certifier): a tsa-unit certificate, stored and audited like
// every certificate. The CA is opened on first use, so that wiring the TSA
// needs no CA until a unit key is certified.
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
	if c.authority == nil {
		a, err := c.Open(ctx)
		if err != nil {
			return nil, nil, fmt.Errorf("opening the CA: %w", err)
		}
		c.authority = a
	}
	got, err := c.authority.IssueOnce(ctx, Request{
		Profile: policies.ProfileTSAUnit, CA: c.CA, Subject: c.Subject,
		PublicKey: pub, KeyGeneratedByService: true, CredentialID: credentialID, RequestedBy: actor,
	})
	if err != nil {
		return nil, nil, err
	}
	return got.Certificate, got.Chain[0], nil
}
