package hierarchy

import (
	"bytes"
	"crypto/x509"
	"os"

	"github.com/thiqa/thiqa/internal/pemcert"
)

// RevokedGeneration is an installed generation of an issuing CA whose
// certificate a root CRL lists as revoked.
type RevokedGeneration struct {
	// CA is the CA's name in the configuration (organisation); Generation
	// the generation's issuer name (organisation, organisation_2, …).
	CA, Generation string
	// Path is its certificate file; Serial its serial, in hex.
	Path, Serial string
	// Reason is the CRL entry's reason code (0 when it gives none).
	Reason int
}

// RevokedGenerations lists the installed generations of c's issuing CAs
// whose certificates rl (a CRL of c's root) revokes. A revocation on the
// root's CRL stops the servers issuing from the CA once they read it
// (ca.Authority.ApplyRootCRL); `thiqa ca crl import` says so for each.
// Certificates not there or unreadable are skipped (other checks report
// those).
func RevokedGenerations(c Config, rl *x509.RevocationList) []RevokedGeneration {
	revoked := make(map[string]int, len(rl.RevokedCertificateEntries))
	for _, e := range rl.RevokedCertificateEntries {
		if e.SerialNumber != nil {
			revoked[e.SerialNumber.Text(16)] = e.ReasonCode
		}
	}
	if len(revoked) == 0 {
		return nil
	}
	var out []RevokedGeneration
	for _, is := range c.Issuers {
		for n := 1; ; n++ {
			gen := GenerationName(is.Name, n)
			path := CertPath(c.CertDir, gen)
			raw, err := os.ReadFile(path)
			if err != nil {
				break
			}
			cert, err := pemcert.Parse(raw)
			if err != nil || cert.SerialNumber == nil || !bytes.Equal(cert.RawIssuer, rl.RawIssuer) {
				continue
			}
			serial := cert.SerialNumber.Text(16)
			if reason, ok := revoked[serial]; ok {
				out = append(out, RevokedGeneration{CA: is.Name, Generation: gen, Path: path, Serial: serial, Reason: reason})
			}
		}
	}
	return out
}
