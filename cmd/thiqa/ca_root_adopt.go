package main

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

	"github.com/thiqa/thiqa/ca/ceremony"
	"github.com/thiqa/thiqa/ca/crl"
	"github.com/thiqa/thiqa/ca/hierarchy"
	"github.com/thiqa/thiqa/cmd/thiqa/internal/config"
	"github.com/thiqa/thiqa/hsm"
	"github.com/thiqa/thiqa/internal/atomicfile"
	"github.com/thiqa/thiqa/internal/pemcert"
)

// caRootAdopt is `thiqa ca root adopt`: on the offline machine, it takes
// the root of a deployment whose root key is on its online token into a
// new ceremony folder (ceremony.Folder.AdoptRoot), from a copy of that
// token made with the HSM's own backup or clone (for SoftHSM a copy of the
// data folder's token folder): it finds the key of the root certificate on
// it, writes ceremony.yaml naming it, and records the root, its issuing
// CAs and its last CRL. Keys never leave a token through Thiqa.
func caRootAdopt(ctx context.Context, env *cliEnv, args []string) (err error) {
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
	root, err := hierarchy.ReadRoot(*rootFile, "--root-cert")
	if err != nil {
		return err
	}
	raw, err := os.ReadFile(*crlFile)
	if err != nil {
		return fmt.Errorf("reading --crl: %w", err)
	}
	_, lastCRL, err := crl.ParseCRL(raw)
	if err != nil {
		return withExit(2, fmt.Errorf("--crl %s: %w", *crlFile, err))
	}
	issued, base, err := readAdoptedCAs(*caDir, root)
	if err != nil {
		return err
	}
	if *baseURL != "" {
		base = *baseURL
	}
	abs, err := filepath.Abs(*dir)
	if err != nil {
		return fmt.Errorf("ceremony folder: %w", err)
	}
	cfg, err := adoptCeremonyConfig(ctx, abs, root, adoptToken{module: *module, label: *label, pinFile: *pinFile, softTokens: *softTokens}, base)
	if err != nil {
		return err
	}
	c, _, err := openCeremony(ctx, cfg.Dir(), false)
	if err != nil {
		return err
	}
	defer c.Close()
	return c.AdoptRoot(ctx, ceremony.AdoptRequest{Root: root, Issued: issued, LastCRL: lastCRL, PublicBaseURL: base}, env.stdout)
}

// adoptToken names the offline token holding the copy of the root key.
type adoptToken struct{ module, label, pinFile, softTokens string }

// adoptCeremonyConfig writes the ceremony folder's ceremony.yaml naming
// the offline token and the root's key on it, found by its public key.
// A token without the root's key is refused and leaves nothing behind; a
// ceremony.yaml already there (a run again) must name the same token.
func adoptCeremonyConfig(ctx context.Context, dir string, root *x509.Certificate, t adoptToken, base string) (_ *config.Ceremony, err error) {
	pin, err := filepath.Abs(t.pinFile)
	if err != nil {
		return nil, err
	}
	if _, err := os.Stat(pin); err != nil {
		return nil, fmt.Errorf("--pin-file: %w", err)
	}
	cfg := config.DefaultCeremony(dir)
	cfg.HSM = hsm.TokenConfig{Module: t.module, TokenLabel: t.label, PINFile: pin}
	if t.softTokens != "" {
		tokens, err := filepath.Abs(t.softTokens)
		if err != nil {
			return nil, err
		}
		if fi, err := os.Stat(tokens); err != nil || !fi.IsDir() {
			return nil, fmt.Errorf("--softhsm-tokens %s: not a token folder (%v)", tokens, err)
		}
		cfg.HSM.SoftHSM = &hsm.SoftHSMConfig{Conf: "softhsm2.conf", TokenDir: tokens, SOPINFile: "secrets/so.pin"}
	}
	cfg.PublicBaseURL = base
	if old, err := config.LoadCeremony(dir); err == nil {
		if old.HSM.Module != cfg.HSM.Module || old.HSM.TokenLabel != cfg.HSM.TokenLabel {
			return nil, fmt.Errorf("%s names another token (%s, %s) than --module and --token-label: nothing was adopted", config.CeremonyPath(dir), old.HSM.Module, old.HSM.TokenLabel)
		}
		return old, nil
	} else if !errors.Is(err, os.ErrNotExist) {
		return nil, err
	}
	if err := cfg.HSM.CheckModule(); err != nil {
		return nil, err
	}
	created := atomicfile.NewCreated(dir)
	defer func() {
		if err != nil {
			created.Undo()
		}
	}()
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("creating the ceremony folder: %w", err)
	}
	made, err := cfg.HSM.PrepareSoftHSM(cfg.Resolve, "thiqa ca root adopt")
	created.Add(made...)
	if err != nil {
		return nil, err
	}
	key, err := findRootKey(ctx, cfg, root)
	if err != nil {
		return nil, err
	}
	cfg.RootKey = hsm.URI{Token: t.label, Object: key}.String()
	out, err := cfg.Marshal()
	if err != nil {
		return nil, err
	}
	if err := atomicfile.WriteNew(config.CeremonyPath(dir), out, 0o600); err != nil {
		return nil, fmt.Errorf("writing %s: %w", config.CeremonyPath(dir), err)
	}
	return cfg, nil
}

// findRootKey returns the label of the key of root on the ceremony's
// token, found by its public key.
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
	keys, err := tok.ListKeys(ctx)
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
	return "", fmt.Errorf("the token %q holds no key of the root %s (its keys: %s): nothing was adopted; copy the deployment's token (the HSM's backup or clone) and name that one",
		cfg.HSM.TokenLabel, root.Subject, strings.Join(labels, ", "))
}

// readAdoptedCAs reads the issuing CA certificates the root signed from a
// copy of a data folder's ca/ folder (NAME.pem; the root's own and the
// OCSP responders' are skipped) and the public base URL they name the
// root's CRL under.
func readAdoptedCAs(dir string, root *x509.Certificate) ([]ceremony.AdoptedCA, string, error) {
	files, err := filepath.Glob(filepath.Join(dir, "*.pem"))
	if err != nil {
		return nil, "", err
	}
	var out []ceremony.AdoptedCA
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
		out = append(out, ceremony.AdoptedCA{Name: strings.TrimSuffix(filepath.Base(p), ".pem"), Cert: c})
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
		return nil, "", errors.New("the issuing CA certificates name no root CRL: give --public-base-url")
	}
	return out, base, nil
}
