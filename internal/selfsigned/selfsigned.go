// Package selfsigned names and numbers the certificates the deployment
// signs for its own service keys outside the CA hierarchy (the CMP
// server's, the trusted-list signer's): relying parties trust them because
// they are configured, not because a CA vouches for them, so they carry
// the deployment's organisation and country from the root CA certificate.
package selfsigned

import (
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"math/big"
)

// DefaultOrganisation names the organisation when there is no root CA
// certificate, or it names none.
const DefaultOrganisation = "Thiqa"

// Name returns the subject of a self-signed certificate: the common name
// commonName gives for the organisation, the organisation of root (or
// DefaultOrganisation) and, when root names one, its country.
func Name(root *x509.Certificate, commonName func(org string) string) pkix.Name {
	org, country := DefaultOrganisation, ""
	if root != nil {
		if o := root.Subject.Organization; len(o) > 0 {
			org = o[0]
		}
		if c := root.Subject.Country; len(c) > 0 {
			country = c[0]
		}
	}
	n := pkix.Name{CommonName: commonName(org), Organization: []string{org}}
	if country != "" {
		n.Country = []string{country}
	}
	return n
}

// Serial returns a random serial number of at most 128 bits that is never
// zero (RFC 5280 §4.1.2.2: positive, at most 20 octets).
func Serial() (*big.Int, error) {
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		return nil, err
	}
	return serial.Add(serial, big.NewInt(1)), nil
}
