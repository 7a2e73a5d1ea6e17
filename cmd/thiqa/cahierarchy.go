package main

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/thiqa/thiqa/ca"
	"github.com/thiqa/thiqa/ca/hierarchy"
	"github.com/thiqa/thiqa/cmd/thiqa/internal/config"
	"github.com/thiqa/thiqa/hsm"
	"github.com/thiqa/thiqa/hsm/keyring"
	"github.com/thiqa/thiqa/internal/pemcert"
)

// The CA hierarchy of a data folder (package ca/hierarchy): this file
// describes it from the configuration and hands it the online token.

// caCertPath is where `thiqa init` writes a CA's certificate (PEM).
func caCertPath(cfg *config.Config, name string) string {
	return hierarchy.CertPath(cfg.Resolve(cfg.CA.CertDir), name)
}

// caCertificate reads the PEM certificate of the CA name from the data
// folder (ca/NAME.pem).
func caCertificate(cfg *config.Config, name string) (*x509.Certificate, error) {
	path := caCertPath(cfg, name)
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	c, err := pemcert.Parse(raw)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return c, nil
}

// countryMismatches says where the deployment's country (thiqa.yaml) is
// not the C of the certificates of the CA it comes from
// (hierarchy.CountryMismatches): `thiqa config check` and `thiqa serve`
// warn of each, refusing nothing. Nil without a CA, or when the
// configuration does not describe a hierarchy (other checks say why).
func countryMismatches(cfg *config.Config) []hierarchy.CountryMismatch {
	if !cfg.CA.Enabled() {
		return nil
	}
	h, err := hierarchyConfig(cfg)
	if err != nil {
		return nil
	}
	return hierarchy.CountryMismatches(h)
}

// hierarchyConfig describes the configured CA hierarchy
// (hierarchy.FromConfig).
func hierarchyConfig(cfg *config.Config) (hierarchy.Config, error) {
	return hierarchy.FromConfig(cfg.CA, cfg.Dir(), cfg.Resolve(cfg.CA.CertDir), cfg.PublicBaseURL,
		cfg.HSM.KeyLabel)
}

// findHierarchy looks up every CA's key on the token and its certificate
// in the data folder (hierarchy.Find): the root first.
func findHierarchy(ctx context.Context, cfg *config.Config, tok *hsm.Token) ([]*hierarchy.Part, error) {
	h, err := hierarchyConfig(cfg)
	if err != nil {
		return nil, err
	}
	return hierarchy.Find(ctx, h, keyring.CAToken{Token: tok})
}

// initCA creates the CA hierarchy on the token and in the data folder
// (hierarchy.Init); with an offline root it stops init with
// hierarchy.ErrPending while issuing CAs await their certificates.
func initCA(ctx context.Context, p *platform, out io.Writer) error {
	if !p.cfg.CA.Enabled() {
		return nil
	}
	h, err := hierarchyConfig(p.cfg)
	if err != nil {
		return err
	}
	return hierarchy.Init(ctx, h, keyring.CAToken{Token: p.token, Audit: p.audit}, p.audit, out)
}

// offlineRootFor reads --root-cert and makes the configuration's root
// offline when init writes the configuration; a folder whose root key is
// on its token is refused.
func offlineRootFor(cfg *config.Config, haveConfig bool, path string) (*x509.Certificate, error) {
	if path == "" {
		return nil, nil
	}
	root, err := hierarchy.ReadRoot(path, "--root-cert")
	if err != nil {
		return nil, err
	}
	switch {
	case !cfg.CA.Enabled():
		return nil, errors.New("--root-cert: the configuration runs no CA (ca section)")
	case !haveConfig:
		cfg.CA.Root = ca.KeyConfig{Name: cfg.CA.Root.Name, Offline: true}
	case !cfg.CA.Root.Offline:
		return nil, fmt.Errorf("--root-cert: the root key of %s is on its token (ca.root.key); an offline root needs a data folder made with --root-cert (nothing was changed)", cfg.Dir())
	}
	return root, nil
}

// installRootCert writes the offline root's certificate to the data
// folder (hierarchy.InstallRoot) and returns the file it created, if any.
func installRootCert(cfg *config.Config, root *x509.Certificate) (string, error) {
	h, err := hierarchyConfig(cfg)
	if err != nil {
		return "", err
	}
	return hierarchy.InstallRoot(h, root)
}
