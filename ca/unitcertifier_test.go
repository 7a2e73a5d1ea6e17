package ca

import (
	"context"
	"crypto"
	"testing"

	"github.com/thiqa/thiqa/policies"
)

// The CA is opened once, on the first certification; certifying the same
// key again returns the certificate issued before.
func TestUnitCertifier(t *testing.T) {
	pki := newTestPKI(t, func(tb testing.TB) crypto.Signer { return p384(tb) })
	opened := 0
	c := &UnitCertifier{CA: policies.IssuerTSA, Subject: subjectFor(policies.ProfileTSAUnit),
		Open: func(context.Context) (*Authority, error) { opened++; return pki.authority, nil }}
	key := p384(t)
	cert, issuer, err := c.CertifyUnit(context.Background(), key.Public(), "tsa-unit", "thiqa-init")
	if err != nil {
		t.Fatal(err)
	}
	if !issuer.Equal(pki.issuers[policies.IssuerTSA].Certificate()) || cert.CheckSignatureFrom(issuer) != nil {
		t.Fatalf("the unit certificate is not the tsa CA's: issuer %s", issuer.Subject)
	}
	again, _, err := c.CertifyUnit(context.Background(), key.Public(), "tsa-unit", "thiqa-init")
	if err != nil || !again.Equal(cert) || opened != 1 {
		t.Fatalf("second certification: %v, same %v, opened %d times", err, again.Equal(cert), opened)
	}
}
