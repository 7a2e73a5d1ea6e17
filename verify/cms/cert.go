package cms

import (
	"crypto/x509"

	"github.com/thiqa/thiqa/verify/path"
)

// ParseCertificate parses a DER certificate, tolerating the defects
// path.ParseCertificate repairs (negative serials, unreadable CRL
// distribution points) without changing the bytes signatures cover.
func ParseCertificate(der []byte) (*x509.Certificate, error) { return path.ParseCertificate(der) }
