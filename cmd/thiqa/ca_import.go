package main

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/thiqa/thiqa/ca/hierarchy"
	"github.com/thiqa/thiqa/cmd/thiqa/internal/config"
	"github.com/thiqa/thiqa/hsm/keyring"
	"github.com/thiqa/thiqa/internal/pemcert"
)

// caImport is `thiqa ca import`: it installs the certificate the offline
// root signed for an issuing CA whose key waits on the online token
// (hierarchy.Import); any refusal changes nothing.
func caImport(ctx context.Context, env *cliEnv, args []string) error {
	fs := newFlags("ca import", env)
	dir := fs.String("data", "", "data folder (required)")
	name := fs.String("name", "", "the issuing CA: citizen, organisation or tsa (required)")
	certFile := fs.String("cert", "", "the certificate from `thiqa ca sign`, PEM (required)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *name == "" || *certFile == "" {
		return withExit(2, errors.New("--data, --name and --cert are required"))
	}
	var cert, root *x509.Certificate
	var h hierarchy.Config
	p, closePlatform, err := openOperatorFolder(ctx, env, *dir, func(cfg *config.Config) error {
		if err := checkIssuingCA(cfg, *name); err != nil {
			return err
		}
		raw, err := os.ReadFile(*certFile)
		if err != nil {
			return fmt.Errorf("reading --cert: %w", err)
		}
		if cert, err = pemcert.Parse(raw); err != nil {
			return fmt.Errorf("--cert %s: %w", *certFile, err)
		}
		if root, err = caCertificate(cfg, cfg.CA.Root.Name); err != nil {
			return fmt.Errorf("the configured root certificate: %w", err)
		}
		h, err = hierarchyConfig(cfg)
		return err
	})
	if err != nil {
		return err
	}
	defer closePlatform()
	return hierarchy.Import(ctx, h, keyring.CAToken{Token: p.token, Audit: p.audit}, p.audit, *name, cert, root, operatorName(), env.stdout)
}

// checkIssuingCA refuses a name that is not an issuing CA of the data
// folder (exit code 2), or a folder without a CA.
func checkIssuingCA(cfg *config.Config, name string) error {
	if !cfg.CA.Enabled() {
		return errors.New("this data folder runs no CA (ca section of thiqa.yaml)")
	}
	var names []string
	for _, c := range cfg.CA.Issuers {
		if c.Name == name {
			return nil
		}
		names = append(names, c.Name)
	}
	return withExit(2, fmt.Errorf("--name %q: not an issuing CA of this data folder (%s)", name, strings.Join(names, ", ")))
}
