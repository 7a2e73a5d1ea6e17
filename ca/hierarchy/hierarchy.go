// Package hierarchy is the CA hierarchy as a data folder keeps it: each
// CA's key on the online token and its certificate (and CSR) in the CA
// certificate folder, including the later generations of issuing CAs that
// were rolled over to a new key. It finds what is there (Find), prepares
// it (Init: the development hierarchy with the root key online, or, for an
// offline root, each issuing CA's key and the CSR the key ceremony
// certifies), installs what the ceremony signed (InstallRoot, Import) and
// rolls an issuing CA over to a new key (Rollover). The root's certificate
// is also the deployment's identity (Identity), which ties a data folder
// to its store.
//
// It never sees PKCS#11 or the configuration: the caller describes the
// hierarchy (Config) and hands over the token (Token) and the audit log.
package hierarchy

import (
	"context"
	"crypto"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/thiqa/thiqa/ca"
	"github.com/thiqa/thiqa/internal/audit"
	"github.com/thiqa/thiqa/internal/pemcert"
	"github.com/thiqa/thiqa/policies"
)

// CA is one CA as the configuration describes it.
type CA struct {
	// Name is the CA's short name: root, citizen, organisation or tsa. It
	// names its URLs (/certs/{name}.crt) and its certificate file.
	Name string
	// Key is the pkcs11: URI of its key ("" for an offline root) and
	// KeyLabel its object label on the token.
	Key, KeyLabel string
	// KeyType is the type of a key generated for it ("ec-p384").
	KeyType string
	// CommonName, Organization, OrganizationIdentifier and Country form
	// its certificate's subject.
	CommonName, Organization, OrganizationIdentifier, Country string
	// Validity is its certificate's lifetime ("7300d" or a Go duration).
	Validity string
}

// Config is the hierarchy of one data folder.
type Config struct {
	// Dir is the data folder, named in the advice of messages.
	Dir string
	// CertDir is the CA certificate folder (absolute).
	CertDir string
	// Root and Issuers are the configured CAs; RootOffline says the root
	// key is not on the token (the key ceremony keeps it).
	Root        CA
	RootOffline bool
	Issuers     []CA
	// BaseURL is the deployment's public base URL (CRL and CA
	// certificate URLs in the certificates).
	BaseURL string
	// Profiles are the certificate profiles' settings: an issuing CA's
	// certificate lists the policies of the profiles it issues.
	Profiles policies.DefaultsConfig
	// Country is the deployment's country (ca.Config.Country): the
	// natural-person profiles that list no countries issue to it alone
	// (policies.ProfileSet.WithHomeCountry). Empty: to any country.
	Country string
}

// FromConfig describes the hierarchy of the ca section c of the data
// folder dir: certDir is c.CertDir resolved, baseURL the deployment's
// public base URL, and keyLabel names the object label on the token of a
// CA key's pkcs11: URI (an offline root has no key to name).
func FromConfig(c ca.Config, dir, certDir, baseURL string, keyLabel func(uri string) (string, error)) (Config, error) {
	h := Config{Dir: dir, CertDir: certDir, RootOffline: c.Root.Offline, BaseURL: baseURL, Profiles: c.Profiles,
		Country: c.Country()}
	describe := func(k ca.KeyConfig) (CA, error) {
		d := CA{Name: k.Name, Key: k.Key, KeyType: k.KeyTypeOrDefault(), CommonName: k.CommonName, Organization: k.Organization,
			OrganizationIdentifier: k.OrganizationIdentifier, Country: k.Country, Validity: k.Validity}
		if k.Key != "" {
			label, err := keyLabel(k.Key)
			if err != nil {
				return d, fmt.Errorf("CA %s: %w", k.Name, err)
			}
			d.KeyLabel = label
		}
		return d, nil
	}
	var err error
	if h.Root, err = describe(c.Root); err != nil {
		return h, err
	}
	for _, is := range c.Issuers {
		d, err := describe(is)
		if err != nil {
			return h, err
		}
		h.Issuers = append(h.Issuers, d)
	}
	return h, nil
}

// Key is a key on the online token.
type Key = ca.TokenKey

// KeyInfo describes a key on the token.
type KeyInfo = ca.TokenKeyInfo

// Token is the online token.
type Token interface {
	// FindKey returns the key labelled label, an error wrapping
	// ErrKeyNotFound when there is none.
	FindKey(ctx context.Context, label string) (Key, error)
	// GenerateKey generates (and records in the audit log) a key of
	// keyType labelled label.
	GenerateKey(ctx context.Context, label, keyType string) (Key, error)
	// Keys lists the keys on the token.
	Keys(ctx context.Context) ([]KeyInfo, error)
}

// Auditor records in the audit log (*audit.Log).
type Auditor interface {
	Append(ctx context.Context, e audit.Entry) (audit.Record, error)
}

// ErrKeyNotFound is what Token.FindKey returns (wrapped) for a label the
// token does not hold.
var ErrKeyNotFound = ca.ErrKeyNotFound

// CertPath is where a CA's certificate is kept (PEM): certDir/name.pem.
func CertPath(certDir, name string) string {
	return filepath.Join(certDir, name+".pem")
}

// Part is one CA of the hierarchy as found on the token and on disk.
type Part struct {
	// Conf is the CA's configuration; for a later generation of an
	// issuing CA, Conf.Name, Conf.Key and Conf.KeyLabel are the
	// generation's issuer name, key URI and label.
	Conf CA
	// Key is nil when the token has no such key.
	Key Key
	// Cert is nil when the certificate file is missing; Path is the file.
	Cert *x509.Certificate
	Path string

	// ca and gen name the CA and generation of a later generation.
	ca  string
	gen int
}

// CA is the name of the CA the part is a generation of.
func (p *Part) CA() string {
	if p.ca != "" {
		return p.ca
	}
	return p.Conf.Name
}

// Generation is the part's generation, 1 for the configured key.
func (p *Part) Generation() int { return max(p.gen, 1) }

// Find looks up every configured CA's key on the token and its certificate
// in the CA folder, without creating anything: the root first (without a
// key when it is offline), then the issuing CAs, then the later
// generations of rolled-over issuing CAs that have their certificate.
func Find(ctx context.Context, c Config, tok Token) ([]*Part, error) {
	var parts []*Part
	for _, conf := range append([]CA{c.Root}, c.Issuers...) {
		p := &Part{Conf: conf, Path: CertPath(c.CertDir, conf.Name)}
		if conf.Key != "" { // an offline root has no key here
			switch k, err := tok.FindKey(ctx, conf.KeyLabel); {
			case err == nil:
				p.Key = k
			case !errors.Is(err, ErrKeyNotFound):
				return nil, fmt.Errorf("CA %s: finding key %q: %w", conf.Name, conf.KeyLabel, err)
			}
		}
		var err error
		if p.Cert, err = readCert(p.Path); err != nil {
			return nil, fmt.Errorf("CA %s: %w", conf.Name, err)
		}
		if pub, ok := publicOf(p.Key); ok && p.Cert != nil && !pub.Equal(p.Cert.PublicKey) {
			return nil, fmt.Errorf("CA %s: key %s does not match the certificate in %s", conf.Name, conf.Key, p.Path)
		}
		parts = append(parts, p)
	}
	later, err := laterGenerationParts(ctx, c, tok)
	if err != nil {
		return nil, err
	}
	return append(parts, later...), nil
}

// readCert reads a PEM certificate file; nil when there is none.
func readCert(path string) (*x509.Certificate, error) {
	raw, err := os.ReadFile(path)
	switch {
	case errors.Is(err, os.ErrNotExist):
		return nil, nil
	case err != nil:
		return nil, fmt.Errorf("reading %s: %w", path, err)
	}
	c, err := pemcert.Parse(raw)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return c, nil
}

// publicOf returns the key's public half, false when there is no key.
func publicOf(k Key) (interface{ Equal(crypto.PublicKey) bool }, bool) {
	if k == nil {
		return nil, false
	}
	pub, ok := k.Public().(interface{ Equal(crypto.PublicKey) bool })
	return pub, ok
}
