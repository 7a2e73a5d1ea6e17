package build

import (
	"bytes"
	"crypto"
	"crypto/rand"
	"crypto/x509"
	"encoding/asn1"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/thiqa/thiqa/internal/atomicfile"
	"github.com/thiqa/thiqa/internal/selfsigned"
	"github.com/thiqa/thiqa/verify"
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
	serial, err := selfsigned.Serial()
	if err != nil {
		return nil, fmt.Errorf("serial number: %w", err)
	}
	now = now.UTC()
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject:      selfsigned.Name(root, func(string) string { return operator + " trusted list signer" }),
		NotBefore:    now.Add(-time.Minute), NotAfter: now.Add(SignerValidity),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageContentCommitment,
		UnknownExtKeyUsage:    []asn1.ObjectIdentifier{oidTSLSigning},
		BasicConstraintsValid: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		return nil, fmt.Errorf("self-signing the trusted-list signer certificate: %w", err)
	}
	return der, nil
}

// ErrOtherKey is the refusal of a signer certificate that certifies
// another key than the list signer's.
var ErrOtherKey = errors.New("build: the certificate certifies another key than the list signer's")

// ReadSignerCertificate reads the list signer's certificate, the first of
// the PEM file at path, and checks that it certifies pub: an error wrapping
// fs.ErrNotExist when there is no file, ErrOtherKey when it certifies
// another key.
func ReadSignerCertificate(path string, pub crypto.PublicKey) (*x509.Certificate, error) {
	if _, err := os.Stat(path); err != nil {
		return nil, err
	}
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("reading trust anchors: %w", err)
	}
	certs, err := verify.ParsePEMCertificates(raw)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	spki, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil || !bytes.Equal(certs[0].RawSubjectPublicKeyInfo, spki) {
		return nil, ErrOtherKey
	}
	return certs[0], nil
}

// WriteSignerCertificate makes the list signer's certificate
// (SignerCertificate) and writes it as PEM to path, creating its folder; it
// never replaces a file (fs.ErrExist).
func WriteSignerCertificate(path string, key crypto.Signer, operator string, root *x509.Certificate, now time.Time) error {
	der, err := SignerCertificate(key, operator, root, now)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return fmt.Errorf("creating %s: %w", filepath.Dir(path), err)
	}
	if err := atomicfile.WriteNew(path, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644); err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	return nil
}

// EnsureSignerCertificate makes sure path holds the certificate of key,
// the list signer named keyName: one that certifies key is kept, one that
// certifies another key is refused (wrapping ErrOtherKey; nothing is
// replaced), and a missing one is written (WriteSignerCertificate; root
// may be nil).
func EnsureSignerCertificate(path string, key crypto.Signer, keyName, operator string, root *x509.Certificate, now time.Time) error {
	switch _, err := ReadSignerCertificate(path, key.Public()); {
	case errors.Is(err, ErrOtherKey):
		return fmt.Errorf("%w: %s holds another key than the trusted-list signer %s on the token (nothing was replaced)", err, path, keyName)
	case errors.Is(err, os.ErrNotExist):
		return WriteSignerCertificate(path, key, operator, root, now)
	default:
		return err
	}
}
