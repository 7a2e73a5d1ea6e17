// Package pemcert reads and writes single certificates as PEM, the form in
// which the data folder and the ceremony folder keep them (ca/NAME.pem,
// root.pem).
package pemcert

import (
	"crypto/x509"
	"encoding/pem"
	"errors"
	"strings"
)

// Parse reads exactly one PEM certificate: a CERTIFICATE block and nothing
// but white space after it.
func Parse(raw []byte) (*x509.Certificate, error) {
	blk, rest := pem.Decode(raw)
	if blk == nil || blk.Type != "CERTIFICATE" || strings.TrimSpace(string(rest)) != "" {
		return nil, errors.New("want exactly one PEM CERTIFICATE block")
	}
	return x509.ParseCertificate(blk.Bytes)
}

// Encode returns der as a PEM CERTIFICATE block.
func Encode(der []byte) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
}
