package verify

import (
	"encoding/pem"
	"errors"
	"fmt"
	"os"

	"crypto/x509"

	"github.com/thiqa/thiqa/verify/path"
)

// ParsePEMCertificates reads every CERTIFICATE block of a PEM file (for
// --trust); other blocks are ignored. It fails when none is found.
func ParsePEMCertificates(data []byte) ([]*x509.Certificate, error) {
	var out []*x509.Certificate
	for {
		var b *pem.Block
		b, data = pem.Decode(data)
		if b == nil {
			break
		}
		if b.Type != "CERTIFICATE" {
			continue
		}
		c, err := path.ParseCertificate(b.Bytes)
		if err != nil {
			return nil, fmt.Errorf("parsing trust anchor %d: %w", len(out)+1, err)
		}
		out = append(out, c)
	}
	if len(out) == 0 {
		return nil, errors.New("verify: no CERTIFICATE block in PEM data")
	}
	return out, nil
}

// ReadPEMFile reads every certificate of the PEM file path
// (ParsePEMCertificates): the trust anchors of --trust and of a
// deployment's configuration.
func ReadPEMFile(path string) ([]*x509.Certificate, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("reading trust anchors: %w", err)
	}
	certs, err := ParsePEMCertificates(raw)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return certs, nil
}
