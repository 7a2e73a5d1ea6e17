package ceremony

import (
	"context"
	"crypto"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/thiqa/thiqa/ca"
	"github.com/thiqa/thiqa/ca/crl"
	"github.com/thiqa/thiqa/ca/hierarchy"
	"github.com/thiqa/thiqa/internal/pemcert"
)

// What `thiqa ca root adopt` reads before it adopts: the copies the
// operator carried from the deployment (ReadAdoption) and the root's key on
// the copy of its token (FindRootKey).

// AdoptFiles names the copies of a deployment's files a root is adopted
// from.
type AdoptFiles struct {
	// RootCert is the deployment's root certificate (D/ca/root.pem).
	RootCert string
	// CACerts is a copy of the deployment's D/ca folder: the issuing CA
	// certificates the root signed.
	CACerts string
	// CRL is the root CRL the deployment publishes (BASE/crl/root.crl).
	CRL string
	// PublicBaseURL is the deployment's publicBaseURL; "" for what its
	// issuing CA certificates name.
	PublicBaseURL string
}

// ReadAdoption reads what AdoptRoot takes from the deployment's files.
// files.PublicBaseURL, when given, replaces the base URL the issuing CA
// certificates name (and is needed when they name none). A CRL that is no
// CRL is an error wrapping crl.ErrMalformed.
func ReadAdoption(files AdoptFiles) (AdoptRequest, error) {
	root, err := hierarchy.ReadRoot(files.RootCert, "--root-cert")
	if err != nil {
		return AdoptRequest{}, err
	}
	raw, err := os.ReadFile(files.CRL)
	if err != nil {
		return AdoptRequest{}, fmt.Errorf("reading --crl: %w", err)
	}
	_, lastCRL, err := crl.ParseCRL(raw)
	if err != nil {
		return AdoptRequest{}, fmt.Errorf("--crl %s: %w", files.CRL, err)
	}
	issued, base, err := ReadAdoptedCAs(files.CACerts, root)
	if err != nil && !(errors.Is(err, ErrNoBaseURL) && files.PublicBaseURL != "") {
		return AdoptRequest{}, err
	}
	if files.PublicBaseURL != "" {
		base = files.PublicBaseURL
	}
	return AdoptRequest{Root: root, Issued: issued, LastCRL: lastCRL, PublicBaseURL: base}, nil
}

// ReadAdoptedCAs reads the issuing CA certificates root signed from a copy
// of a data folder's ca/ folder (NAME.pem; the root's own and the OCSP
// responders' are skipped) and the public base URL they name the root's
// CRL under. When none names it, it returns the certificates with
// ErrNoBaseURL.
func ReadAdoptedCAs(dir string, root *x509.Certificate) ([]AdoptedCA, string, error) {
	files, err := filepath.Glob(filepath.Join(dir, "*.pem"))
	if err != nil {
		return nil, "", err
	}
	var out []AdoptedCA
	base := ""
	for _, p := range files {
		raw, err := os.ReadFile(p)
		if err != nil {
			return nil, "", fmt.Errorf("--ca-certs: %w", err)
		}
		c, err := pemcert.Parse(raw)
		if err != nil {
			return nil, "", fmt.Errorf("--ca-certs: %s: %w", p, err)
		}
		if c.Equal(root) || !c.IsCA || c.CheckSignatureFrom(root) != nil {
			continue
		}
		out = append(out, AdoptedCA{Name: strings.TrimSuffix(filepath.Base(p), ".pem"), Cert: c})
		for _, u := range c.CRLDistributionPoints {
			if b, ok := strings.CutSuffix(u, "/crl/root.crl"); ok && base == "" {
				base = b
			}
		}
	}
	if len(out) == 0 {
		return nil, "", fmt.Errorf("--ca-certs %s: no issuing CA certificate signed by the root: name a copy of the deployment's ca folder", dir)
	}
	if base == "" {
		return out, "", ErrNoBaseURL
	}
	return out, base, nil
}

// ErrOtherRoot refuses to adopt a root into a ceremony folder that holds
// another root already.
var ErrOtherRoot = errors.New("already has another root")

// ErrNotRootKey refuses a key on the offline token that is not the key of
// the root certificate being adopted.
var ErrNotRootKey = errors.New("is not the key of the root")

// ErrAlreadyRevoked refuses to revoke an issuing CA the ceremony has
// revoked already.
var ErrAlreadyRevoked = errors.New("is already revoked")

// ErrNoBaseURL is what ReadAdoptedCAs returns when no issuing CA
// certificate names the root's CRL, so none says the deployment's public
// base URL.
var ErrNoBaseURL = errors.New("the issuing CA certificates name no root CRL: give --public-base-url")

// KeyInfo describes a key listed on the offline token.
type KeyInfo = ca.TokenKeyInfo

// KeyLister lists the keys on a token.
type KeyLister interface {
	// Keys lists the keys on the token.
	Keys(ctx context.Context) ([]KeyInfo, error)
}

// NoRootKeyError is FindRootKey's refusal of a token that holds no key of
// the root.
type NoRootKeyError struct {
	// Token is the token's label, Root the root's subject and Labels the
	// labels of the keys the token holds, sorted.
	Token, Root string
	Labels      []string
}

// Error implements the error interface.
func (e *NoRootKeyError) Error() string {
	return fmt.Sprintf("the token %q holds no key of the root %s (its keys: %s): nothing was adopted; copy the deployment's token (the HSM's backup or clone) and name that one",
		e.Token, e.Root, strings.Join(e.Labels, ", "))
}

// FindRootKey returns the label of the key of root on the token labelled
// tokenLabel, found by its public key: a *NoRootKeyError when it holds
// none.
func FindRootKey(ctx context.Context, tok KeyLister, tokenLabel string, root *x509.Certificate) (string, error) {
	keys, err := tok.Keys(ctx)
	if err != nil {
		return "", err
	}
	var labels []string
	for _, k := range keys {
		if pub, ok := k.Public.(interface{ Equal(crypto.PublicKey) bool }); ok && pub.Equal(root.PublicKey) {
			return k.Label, nil
		}
		labels = append(labels, k.Label)
	}
	slices.Sort(labels)
	return "", &NoRootKeyError{Token: tokenLabel, Root: root.Subject.String(), Labels: labels}
}
