package ca

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"errors"
	"fmt"
	"math/big"
	"time"

	"github.com/thiqa/thiqa/policies"
)

// IssuerOptions configures an issuing CA's signing identity.
type IssuerOptions struct {
	// Name is the CA's short name (citizen, organisation, tsa); it names its URLs.
	Name string
	// BaseURL is the public base URL of caIssuers (BASE/certs/{name}.crt),
	// OCSP (BASE/ocsp) and CRL (BASE/crl/{name}.crl).
	BaseURL string
}

// Issuer is the signing identity of one issuing CA: its certificate, its
// crypto.Signer (an HSM key in production), and a throwaway key of the same
// type with a look-alike certificate used to sign the copies that are linted.
type Issuer struct {
	name      string
	cert      *x509.Certificate
	signer    crypto.Signer
	lintCert  *x509.Certificate
	lintKey   crypto.Signer
	caIssuers string
	ocspURL   string
	crlURL    string
}

// NewIssuer checks that signer holds the key of cert (the lead calls it at
// start-up with the HSM key) and prepares the throwaway lint key.
func NewIssuer(cert *x509.Certificate, signer crypto.Signer, opts IssuerOptions) (*Issuer, error) {
	if cert == nil || signer == nil {
		return nil, errors.New("issuer: certificate and signer are required")
	}
	if opts.Name == "" {
		return nil, errors.New("issuer: name is required")
	}
	if !publicKeysEqual(cert.PublicKey, signer.Public()) {
		return nil, fmt.Errorf("issuer %s: the signer's public key does not match the CA certificate", opts.Name)
	}
	if !cert.IsCA || cert.KeyUsage&x509.KeyUsageCertSign == 0 {
		return nil, fmt.Errorf("issuer %s: certificate is not a CA certificate with keyCertSign", opts.Name)
	}
	if len(cert.SubjectKeyId) == 0 {
		return nil, fmt.Errorf("issuer %s: CA certificate has no subjectKeyIdentifier", opts.Name)
	}
	base, err := cleanBaseURL(opts.BaseURL)
	if err != nil {
		return nil, fmt.Errorf("issuer %s: %w", opts.Name, err)
	}
	lintKey, err := throwawayKey(signer.Public())
	if err != nil {
		return nil, fmt.Errorf("issuer %s: %w", opts.Name, err)
	}
	// The lint issuer has the real subject and key identifier but the
	// throwaway key, so the TBS signed with it equals the one the real key signs.
	lintCert := *cert
	lintCert.PublicKey = lintKey.Public()
	return &Issuer{
		name: opts.Name, cert: cert, signer: signer, lintCert: &lintCert, lintKey: lintKey,
		caIssuers: base + "/certs/" + opts.Name + ".crt",
		ocspURL:   base + "/ocsp",
		crlURL:    base + "/crl/" + opts.Name + ".crl",
	}, nil
}

// throwawayKey generates an in-memory key of the same algorithm and size as pub.
func throwawayKey(pub crypto.PublicKey) (crypto.Signer, error) {
	switch k := pub.(type) {
	case *ecdsa.PublicKey:
		return ecdsa.GenerateKey(k.Curve, rand.Reader)
	case *rsa.PublicKey:
		return rsa.GenerateKey(rand.Reader, k.N.BitLen())
	}
	return nil, fmt.Errorf("unsupported CA key type %T", pub)
}

// Name returns the CA's short name.
func (i *Issuer) Name() string { return i.name }

// Certificate returns the CA certificate.
func (i *Issuer) Certificate() *x509.Certificate { return i.cert }

// leafTemplate builds the end-entity certificate from the profile and the
// validated subject only (never from a CSR's subject or extensions).
func (i *Issuer) leafTemplate(p *policies.Profile, sub policies.Subject, pub crypto.PublicKey, serial *big.Int, notBefore time.Time) (*x509.Certificate, error) {
	ski, err := subjectKeyID(pub)
	if err != nil {
		return nil, err
	}
	pols, err := policyOIDs(p)
	if err != nil {
		return nil, err
	}
	if notBefore.Before(i.cert.NotBefore) { // backdating never precedes the CA itself
		notBefore = i.cert.NotBefore
	}
	notBefore = notBefore.UTC().Truncate(time.Second)
	notAfter := notBefore.Add(p.Validity - time.Second) // notAfter is inclusive (RFC 5280 §4.1.2.5)
	if notAfter.After(i.cert.NotAfter) {
		return nil, fmt.Errorf("certificate would outlive issuing CA %s (notAfter %s)", i.name, i.cert.NotAfter.Format(time.RFC3339))
	}
	t := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               sub.Name(),
		NotBefore:             notBefore,
		NotAfter:              notAfter,
		KeyUsage:              p.KeyUsage,
		BasicConstraintsValid: true,
		IsCA:                  false,
		SubjectKeyId:          ski,
		Policies:              pols,
		IssuingCertificateURL: []string{i.caIssuers},
	}
	if !p.OCSPNoCheck {
		// A delegated responder is not checked for revocation: no OCSP URL for it.
		t.OCSPServer = []string{i.ocspURL}
	}
	t.CRLDistributionPoints = []string{i.crlURL}
	if sub.Email != "" {
		t.EmailAddresses = []string{sub.Email}
	}
	if ext, ok, err := extKeyUsageExtension(p); err != nil {
		return nil, err
	} else if ok {
		t.ExtraExtensions = append(t.ExtraExtensions, ext)
	}
	if ext, ok, err := qcStatementsExtension(p.QC); err != nil {
		return nil, err
	} else if ok {
		t.ExtraExtensions = append(t.ExtraExtensions, ext)
	}
	if p.OCSPNoCheck {
		t.ExtraExtensions = append(t.ExtraExtensions, ocspNoCheckExtension())
	}
	return t, nil
}

// signLintCopy signs the template with the throwaway key under the
// look-alike issuer: the result is parseable DER for the linters whose TBS
// is byte-identical to what the real key will sign.
func (i *Issuer) signLintCopy(t *x509.Certificate, pub crypto.PublicKey) ([]byte, error) {
	der, err := x509.CreateCertificate(rand.Reader, t, i.lintCert, pub, i.lintKey)
	if err != nil {
		return nil, fmt.Errorf("building the certificate to lint: %w", err)
	}
	return der, nil
}

// ErrTBSMismatch means the certificate signed by the CA key is not the one
// that was linted; it is never returned to a client.
var ErrTBSMismatch = errors.New("signed certificate differs from the linted one")

// sign signs the template with the CA key and checks the TBS is the linted
// one. x509.CreateCertificate also verifies the signature against the
// signer's public key, which catches a faulty HSM signature.
func (i *Issuer) sign(t *x509.Certificate, pub crypto.PublicKey, lintedTBS []byte) (*x509.Certificate, error) {
	der, err := x509.CreateCertificate(rand.Reader, t, i.cert, pub, i.signer)
	if err != nil {
		return nil, fmt.Errorf("signing with CA %s: %w", i.name, err)
	}
	c, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, fmt.Errorf("parsing the signed certificate: %w", err)
	}
	if !bytes.Equal(c.RawTBSCertificate, lintedTBS) {
		return nil, ErrTBSMismatch
	}
	return c, nil
}
