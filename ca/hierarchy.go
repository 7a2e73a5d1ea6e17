package ca

import (
	"crypto"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/thiqa/thiqa/policies"
)

// TokenKey is a CA's key on a PKCS#11 token: the online token of
// ca/hierarchy, or the offline token of the key ceremony (ca/ceremony).
type TokenKey interface {
	crypto.Signer
	// URI is its pkcs11: URI.
	URI() string
}

// TokenKeyInfo describes a key listed on a token (hierarchy.Token's and
// the key ceremony's listings).
type TokenKeyInfo struct {
	// Label is the key's CKA_LABEL and URI its pkcs11: URI.
	Label, URI string
	// Public is its public half (nil when the token does not show it).
	Public crypto.PublicKey
}

// ErrKeyNotFound is what a token's FindKey returns (wrapped) for a label
// the token does not hold (hierarchy.Token, ceremony.Token).
var ErrKeyNotFound = errors.New("no such key on the token")

// RootConfig describes the self-signed root CA certificate.
type RootConfig struct {
	// CommonName, Organization, OrganizationIdentifier and Country form the subject.
	CommonName             string `yaml:"commonName"`
	Organization           string `yaml:"organization"`
	OrganizationIdentifier string `yaml:"organizationIdentifier"`
	Country                string `yaml:"country"`
	// Validity is the lifetime (e.g. 20 years).
	Validity time.Duration `yaml:"validity"`
	// NotBefore defaults to now; NotAfter, when set, wins over Validity.
	NotBefore time.Time `yaml:"-"`
	NotAfter  time.Time `yaml:"-"`
}

// IssuingCAConfig describes one issuing (subordinate) CA certificate.
type IssuingCAConfig struct {
	// Name is the CA's short name: citizen, organisation or tsa. It names
	// its URLs (BASE/certs/{name}.crt, BASE/crl/{name}.crl).
	Name string `yaml:"name"`
	// CommonName, Organization, OrganizationIdentifier and Country form the subject.
	CommonName             string `yaml:"commonName"`
	Organization           string `yaml:"organization"`
	OrganizationIdentifier string `yaml:"organizationIdentifier"`
	Country                string `yaml:"country"`
	// Validity is the lifetime; it is cut to the root's notAfter.
	Validity time.Duration `yaml:"validity"`
	// BaseURL is the public base URL (http://pki.example.om) of the AIA and CRL URLs.
	BaseURL string `yaml:"baseURL"`
	// Policies lists the certificate policy OIDs the CA issues under.
	Policies []string `yaml:"policies"`
	// NotBefore defaults to now; NotAfter, when set, wins over Validity.
	NotBefore time.Time `yaml:"-"`
	NotAfter  time.Time `yaml:"-"`
}

// caName builds a CA distinguished name with attributes in the order C, O, organizationIdentifier, CN.
func caName(cn, o, orgID, c string) (pkix.Name, error) {
	if cn == "" || c == "" || !policies.IsCountryCode(c) {
		return pkix.Name{}, errors.New("CA subject needs a commonName and an ISO 3166 country")
	}
	n := pkix.Name{}
	n.ExtraNames = append(n.ExtraNames, pkix.AttributeTypeAndValue{Type: asn1.ObjectIdentifier{2, 5, 4, 6}, Value: c})
	if o != "" {
		n.ExtraNames = append(n.ExtraNames, pkix.AttributeTypeAndValue{Type: asn1.ObjectIdentifier{2, 5, 4, 10}, Value: o})
	}
	if orgID != "" {
		n.ExtraNames = append(n.ExtraNames, pkix.AttributeTypeAndValue{Type: policies.MustOID(policies.OIDAttrOrganizationIdentifier), Value: orgID})
	}
	n.ExtraNames = append(n.ExtraNames, pkix.AttributeTypeAndValue{Type: asn1.ObjectIdentifier{2, 5, 4, 3}, Value: cn})
	return n, nil
}

// subjectKeyID is RFC 7093 §2 method 1: the leftmost 160 bits of the
// SHA-256 of the subjectPublicKey BIT STRING value.
func subjectKeyID(pub crypto.PublicKey) ([]byte, error) {
	bits, err := subjectPublicKeyBits(pub)
	if err != nil {
		return nil, err
	}
	h := sha256.Sum256(bits)
	return h[:20], nil
}

// subjectPublicKeyBits returns the value of pub's subjectPublicKey BIT
// STRING, what the key identifiers of RFC 5280 and RFC 7093 hash.
func subjectPublicKeyBits(pub crypto.PublicKey) ([]byte, error) {
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return nil, fmt.Errorf("encoding public key: %w", err)
	}
	var spki struct {
		Algorithm pkix.AlgorithmIdentifier
		PublicKey asn1.BitString
	}
	if _, err := asn1.Unmarshal(der, &spki); err != nil {
		return nil, fmt.Errorf("decoding public key: %w", err)
	}
	return spki.PublicKey.Bytes, nil
}

// CreateRoot creates the self-signed root CA certificate for signer's key:
// basicConstraints CA (critical, no path length), keyCertSign and cRLSign.
// It is linted (zlint) before signer signs it.
func CreateRoot(signer crypto.Signer, cfg RootConfig) (*x509.Certificate, error) {
	name, err := caName(cfg.CommonName, cfg.Organization, cfg.OrganizationIdentifier, cfg.Country)
	if err != nil {
		return nil, fmt.Errorf("root: %w", err)
	}
	if err := checkKey(signer.Public(), nil); err != nil {
		return nil, fmt.Errorf("root key: %w", err)
	}
	serial, err := newSerial(rand.Reader)
	if err != nil {
		return nil, err
	}
	ski, err := subjectKeyID(signer.Public())
	if err != nil {
		return nil, err
	}
	nb, na, err := validityWindow(cfg.NotBefore, cfg.NotAfter, cfg.Validity)
	if err != nil {
		return nil, fmt.Errorf("root: %w", err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               name,
		NotBefore:             nb,
		NotAfter:              na,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
		MaxPathLen:            -1,
		SubjectKeyId:          ski,
		// RFC 5280 §4.2.1.1 lets a self-signed root omit it; naming its own
		// key helps path building after a rollover, and the lint copy (signed
		// by the throwaway key) would not pass for self-signed without it.
		AuthorityKeyId: ski,
	}
	c, err := signCA(tmpl, tmpl, signer, signer.Public(), caExpectation{pathLen: -1})
	if err != nil {
		return nil, fmt.Errorf("signing root certificate: %w", err)
	}
	return c, nil
}

// CreateIssuingCA creates an issuing CA certificate for subSigner's key,
// signed by the root: basicConstraints CA with pathLenConstraint 0,
// keyCertSign and cRLSign, the CA's certificate policies, and the root's
// caIssuers (BASE/certs/root.crt) and CRL (BASE/crl/root.crl) URLs. It is
// linted (zlint) before the root key signs it. With the root key offline,
// the key ceremony certifies the CA from its CSR instead (CertifyIssuingCA).
func CreateIssuingCA(rootCert *x509.Certificate, rootSigner crypto.Signer, subSigner crypto.Signer, cfg IssuingCAConfig) (*x509.Certificate, error) {
	if cfg.Name == "" || strings.ContainsAny(cfg.Name, "/. ") || cfg.Name == "root" {
		return nil, fmt.Errorf("issuing CA: bad name %q", cfg.Name)
	}
	name, err := caName(cfg.CommonName, cfg.Organization, cfg.OrganizationIdentifier, cfg.Country)
	if err != nil {
		return nil, fmt.Errorf("issuing CA %s: %w", cfg.Name, err)
	}
	if err := checkKey(subSigner.Public(), nil); err != nil {
		return nil, fmt.Errorf("issuing CA %s key: %w", cfg.Name, err)
	}
	if !rootCert.IsCA || !publicKeysEqual(rootCert.PublicKey, rootSigner.Public()) {
		return nil, errors.New("root signer does not match the root certificate")
	}
	tmpl, err := issuingCATemplate(rootCert, subSigner.Public(), caTemplateOptions{
		base: cfg.BaseURL, policies: cfg.Policies, notBefore: cfg.NotBefore, notAfter: cfg.NotAfter, validity: cfg.Validity,
	})
	if err != nil {
		return nil, fmt.Errorf("issuing CA %s: %w", cfg.Name, err)
	}
	tmpl.Subject = name
	c, err := signCA(tmpl, rootCert, rootSigner, subSigner.Public(), caExpectation{pathLen: 0, issuer: rootCert})
	if err != nil {
		return nil, fmt.Errorf("signing issuing CA %s: %w", cfg.Name, err)
	}
	return c, nil
}

// publicKeysEqual compares two public keys of any supported type.
func publicKeysEqual(a, b crypto.PublicKey) bool {
	k, ok := a.(interface{ Equal(crypto.PublicKey) bool })
	return ok && k.Equal(b)
}

// IssuingCAPolicies returns the certificate policy OIDs an issuing CA
// certificate should list: the union, in a stable order, of the policies of
// every profile the CA named caName may issue.
func IssuingCAPolicies(profiles *policies.ProfileSet, caName string) []string {
	var out []string
	seen := map[string]bool{}
	for _, n := range profiles.Names() {
		p, err := profiles.Get(n)
		if err != nil || !p.AllowsIssuer(caName) {
			continue
		}
		for _, o := range p.Policies {
			if s := o.String(); !seen[s] {
				seen[s] = true
				out = append(out, s)
			}
		}
	}
	return out
}
