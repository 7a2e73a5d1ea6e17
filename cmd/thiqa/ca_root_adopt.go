package main

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"path/filepath"

	"github.com/thiqa/thiqa/ca/ceremony"
	"github.com/thiqa/thiqa/ca/crl"
	"github.com/thiqa/thiqa/cmd/thiqa/internal/config"
	"github.com/thiqa/thiqa/hsm"
	"github.com/thiqa/thiqa/hsm/keyring"
)

// caRootAdopt is `thiqa ca root adopt`: on the offline machine, it takes
// the root of a deployment whose root key is on its online token into a
// new ceremony folder (ceremony.Folder.AdoptRoot), from a copy of that
// token made with the HSM's own backup or clone (for SoftHSM a copy of the
// data folder's token folder): it finds the key of the root certificate on
// it, writes ceremony.yaml naming it, and records the root, its issuing
// CAs and its last CRL. Keys never leave a token through Thiqa.
func caRootAdopt(ctx context.Context, env *cliEnv, args []string) error {
	fs := newFlags("ca root adopt", env)
	dir := fs.String("ceremony", "", "ceremony folder to create (required)")
	rootFile := fs.String("root-cert", "", "the deployment's root certificate, D/ca/root.pem (required)")
	caDir := fs.String("ca-certs", "", "a copy of the deployment's D/ca folder: the issuing CA certificates the root signed (required)")
	crlFile := fs.String("crl", "", "the root CRL the deployment publishes (BASE/crl/root.crl) (required)")
	module := fs.String("module", hsm.DefaultSoftHSMModule, "PKCS#11 module of the offline token holding the copy of the root key")
	label := fs.String("token-label", "", "label of the offline token holding the copy of the root key (required)")
	pinFile := fs.String("pin-file", "", "file holding that token's user PIN (required)")
	softTokens := fs.String("softhsm-tokens", "", "SoftHSM only: the copy of the deployment's token folder (D/tokens); the ceremony folder gets a softhsm2.conf naming it")
	baseURL := fs.String("public-base-url", "", "the deployment's publicBaseURL (default: what its issuing CA certificates name)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *dir == "" || *rootFile == "" || *caDir == "" || *crlFile == "" || *label == "" || *pinFile == "" {
		return withExit(2, errors.New("--ceremony, --root-cert, --ca-certs, --crl, --token-label and --pin-file are required"))
	}
	req, err := ceremony.ReadAdoption(ceremony.AdoptFiles{RootCert: *rootFile, CACerts: *caDir, CRL: *crlFile, PublicBaseURL: *baseURL})
	if errors.Is(err, crl.ErrMalformed) {
		return withExit(2, err)
	} else if err != nil {
		return err
	}
	abs, err := filepath.Abs(*dir)
	if err != nil {
		return fmt.Errorf("ceremony folder: %w", err)
	}
	cfg, err := config.WriteAdoptCeremony(ctx, abs, config.AdoptToken{Module: *module, Label: *label, PINFile: *pinFile, SoftTokens: *softTokens}, req.PublicBaseURL,
		func(ctx context.Context, cfg *config.Ceremony) (string, error) {
			return findRootKey(ctx, cfg, req.Root)
		})
	if err != nil {
		return err
	}
	c, _, err := openCeremony(ctx, cfg.Dir(), false)
	if err != nil {
		return err
	}
	defer c.Close()
	return c.AdoptRoot(ctx, req, env.stdout)
}

// findRootKey returns the label of the key of root on the ceremony's
// token (ceremony.FindRootKey).
func findRootKey(ctx context.Context, cfg *config.Ceremony, root *x509.Certificate) (string, error) {
	h := cfg.HSM
	h.PoolSize = 1
	if err := h.UseSoftHSMConf(cfg.Resolve); err != nil {
		return "", err
	}
	tok, err := h.Open(ctx, hsm.OpenOptions{Role: "offline", Resolve: cfg.Resolve, PIN: cfg.PIN})
	if err != nil {
		return "", err
	}
	defer tok.Close()
	return ceremony.FindRootKey(ctx, keyring.CAToken{Token: tok}, cfg.HSM.TokenLabel, root)
}
