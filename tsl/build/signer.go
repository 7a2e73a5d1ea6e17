package build

import (
	"crypto"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"fmt"
	"math/big"
	"time"
)

// oidTSLSigning is id-tsl-kp-tslSigning (ETSI TS 119 612 §5.7.1).
var oidTSLSigning = asn1.ObjectIdentifier{0, 4, 0, 2231, 3, 0}

// SignerValidity is the lifetime of the list signer's certificate.
const SignerValidity = 3 * 365 * 24 * time.Hour

// SignerCertificate returns the DER of the list signer's certificate,
// self-signed by key: a trusted list's signer is trusted because relying
// parties configure its certificate, as the EU publishes the LOTL signers
// in the Official Journal, not through a CA. Its subject names the scheme
// operator, and the organisation and country of root when it has them.
func SignerCertificate(key crypto.Signer, operator string, root *x509.Certificate, now time.Time) ([]byte, error) {
	org, country := "Thiqa", ""
	if root != nil {
		if o := root.Subject.Organization; len(o) > 0 {
			org = o[0]
		}
		if c := root.Subject.Country; len(c) > 0 {
			country = c[0]
		}
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		return nil, fmt.Errorf("serial number: %w", err)
	}
	now = now.UTC()
	tmpl := &x509.Certificate{
		SerialNumber: serial.Add(serial, big.NewInt(1)),
		Subject:      pkix.Name{CommonName: operator + " trusted list signer", Organization: []string{org}},
		NotBefore:    now.Add(-time.Minute), NotAfter: now.Add(SignerValidity),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageContentCommitment,
		UnknownExtKeyUsage:    []asn1.ObjectIdentifier{oidTSLSigning},
		BasicConstraintsValid: true,
	}
	if country != "" {
		tmpl.Subject.Country = []string{country}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		return nil, fmt.Errorf("self-signing the trusted-list signer certificate: %w", err)
	}
	return der, nil
}
