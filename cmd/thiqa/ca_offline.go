package main

import (
	"bytes"
	"context"
	"crypto"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/thiqa/thiqa/ca"
	"github.com/thiqa/thiqa/cmd/thiqa/internal/config"
	"github.com/thiqa/thiqa/hsm"
	"github.com/thiqa/thiqa/internal/audit"
)

// The online side of an offline root (ca.root.offline): the data folder
// holds the root's certificate only. `thiqa init --root-cert` installs it,
// makes each issuing CA's key on the online token and writes its CSR for
// the key ceremony; `thiqa ca import` installs what the ceremony signed;
// until then `thiqa serve` refuses to start.

// errCAsPending stops `thiqa init` after the CA step when issuing CAs
// await their certificates from the key ceremony: the steps after it need
// them. It is not a failure.
var errCAsPending = errors.New("issuing CAs await their certificates from the key ceremony")

// readRootCertFile reads --root-cert: one PEM CA certificate that may sign
// certificates, within its validity.
func readRootCertFile(path string) (*x509.Certificate, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("reading --root-cert: %w", err)
	}
	c, err := parseCertPEM(raw)
	if err != nil {
		return nil, fmt.Errorf("--root-cert %s: %w", path, err)
	}
	if err := checkRootCert(c); err != nil {
		return nil, fmt.Errorf("--root-cert %s: %w", path, err)
	}
	return c, nil
}

// checkRootCert refuses a root certificate that cannot anchor the hierarchy.
func checkRootCert(c *x509.Certificate) error {
	if !c.BasicConstraintsValid || !c.IsCA || c.KeyUsage&x509.KeyUsageCertSign == 0 || c.KeyUsage&x509.KeyUsageCRLSign == 0 {
		return errors.New("not a CA certificate with keyCertSign and cRLSign")
	}
	if !bytes.Equal(c.RawIssuer, c.RawSubject) || c.CheckSignatureFrom(c) != nil {
		return errors.New("not a self-signed root certificate")
	}
	return nil
}

// installRootCert writes the offline root's certificate to the data
// folder (ca/root.pem), or checks that the one there is the same; it
// returns the file it created, if any.
func installRootCert(cfg *config.Config, root *x509.Certificate) (string, error) {
	path := caCertPath(cfg, cfg.CA.Root.Name)
	if raw, err := os.ReadFile(path); err == nil {
		have, err := parseCertPEM(raw)
		if err != nil {
			return "", fmt.Errorf("%s: %w", path, err)
		}
		if !bytes.Equal(have.Raw, root.Raw) {
			return "", fmt.Errorf("%s holds another root (%s, SHA-256 %s) than --root-cert (%s, SHA-256 %s): nothing was changed",
				path, have.Subject, fingerprint(have.Raw), root.Subject, fingerprint(root.Raw))
		}
		return "", nil
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return "", fmt.Errorf("creating the CA certificate folder: %w", err)
	}
	if err := writeFileExclusive(path, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: root.Raw}), 0o644); err != nil {
		return "", fmt.Errorf("writing %s: %w", path, err)
	}
	return path, nil
}

// initIssuingCSRs is the CA step of `thiqa init` for an offline root: it
// checks the root certificate and that no key on the online token is the
// root's, then gives each issuing CA without a key one (generated on the
// token) and a CSR in ca/{name}.csr. It returns errCAsPending while any
// issuing CA lacks its certificate.
func initIssuingCSRs(ctx context.Context, p *platform, out io.Writer) error {
	cfg := p.cfg
	parts, err := findHierarchy(ctx, cfg, p.token)
	if err != nil {
		return err
	}
	root := parts[0]
	if root.cert == nil {
		return fmt.Errorf("the root certificate %s is missing: run `thiqa init --data %s --root-cert root.pem` with the certificate from the key ceremony", root.path, cfg.Dir())
	}
	if err := checkRootCert(root.cert); err != nil {
		return fmt.Errorf("%s: %w", root.path, err)
	}
	if err := refuseRootKeyOnToken(ctx, p.token, root.cert); err != nil {
		return err
	}
	fmt.Fprintf(out, "  CA %-13s offline (certificate %s, SHA-256 %s)\n", "root", root.path, fingerprint(root.cert.Raw))
	var pending []string
	for _, conf := range cfg.CA.Issuers {
		g, err := findGeneration(ctx, cfg, p.token, conf, 1)
		if err != nil {
			return err
		}
		later, err := installedGenerations(cfg, conf.Name)
		if err != nil {
			return err
		}
		switch {
		case g.key == nil && g.cert != nil && len(later) > 0:
			fmt.Fprintf(out, "  CA %-13s rolled over to %s; the first generation's key is gone from the token\n", g.name, generationName(conf.Name, len(later)+1))
			continue
		case g.key == nil && g.cert != nil:
			return fmt.Errorf("CA %s: %s exists but the token has no key %s; restore the key or the configuration (nothing was created or replaced)", g.name, g.certPath, g.uri)
		case g.cert != nil:
			if err := g.cert.CheckSignatureFrom(root.cert); err != nil {
				return fmt.Errorf("CA %s: %s is not signed by the root in %s: %w", g.name, g.certPath, root.path, err)
			}
			fmt.Fprintf(out, "  CA %-13s %s  %s\n", g.name, g.uri, g.certPath)
			continue
		case g.key == nil:
			kt, err := hsm.ParseKeyType(conf.KeyTypeOrDefault())
			if err != nil {
				return err
			}
			if g.key, err = p.token.GenerateKey(ctx, g.label, kt); err != nil {
				return fmt.Errorf("generating key %s: %w", g.uri, err)
			}
			if err := auditKeyGenerated(ctx, p.audit, g.key); err != nil {
				return err
			}
		}
		if err := writeIssuingCSR(ctx, p, g, "thiqa-init"); err != nil {
			return err
		}
		fmt.Fprintf(out, "  CA %-13s %s  awaiting its certificate: CSR %s\n", g.name, g.uri, g.csrPath)
		pending = append(pending, g.name)
	}
	if len(pending) > 0 {
		return fmt.Errorf("%w (%s)", errCAsPending, strings.Join(pending, ", "))
	}
	return nil
}

// refuseRootKeyOnToken fails when a key on the online token is the root's.
func refuseRootKeyOnToken(ctx context.Context, tok *hsm.Token, root *x509.Certificate) error {
	keys, err := tok.ListKeys(ctx)
	if err != nil {
		return err
	}
	for _, k := range keys {
		if pub, ok := k.Public.(interface{ Equal(crypto.PublicKey) bool }); ok && pub.Equal(root.PublicKey) {
			return fmt.Errorf("the online token holds the root key (%s): an offline root's key never comes online; nothing was created", k.URI)
		}
	}
	return nil
}

// writeIssuingCSR writes the CSR of generation g (its key on the token,
// the CA's configured subject; a later generation's commonName ends in
// " G<n>" so the two never share a name) unless it exists, and records it.
func writeIssuingCSR(ctx context.Context, p *platform, g *caGeneration, actor string) error {
	if g.hasCSR {
		return nil
	}
	cn := g.conf.CommonName
	if g.n > 1 {
		cn = fmt.Sprintf("%s G%d", cn, g.n)
	}
	der, err := ca.CreateIssuingCARequest(g.key, ca.IssuingCAConfig{Name: g.name, CommonName: cn, Organization: g.conf.Organization,
		OrganizationIdentifier: g.conf.OrganizationIdentifier, Country: g.conf.Country})
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(g.csrPath), 0o755); err != nil {
		return fmt.Errorf("creating the CA certificate folder: %w", err)
	}
	if err := writeFileExclusive(g.csrPath, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: der}), 0o644); err != nil {
		return fmt.Errorf("writing %s: %w", g.csrPath, err)
	}
	g.hasCSR = true
	_, err = p.audit.Append(ctx, audit.Entry{Actor: actor, Action: "ca.csr.create", Object: g.name, Outcome: audit.OutcomeSuccess,
		Details: map[string]any{"key": g.key.URI(), "csr": g.csrPath, "sha256": sha256Hex(der), "generation": g.n}})
	if err != nil {
		return fmt.Errorf("writing audit record: %w", err)
	}
	return nil
}

// pendingCAsError names the issuing CAs whose certificates are missing and
// the commands that install them.
func pendingCAsError(cfg *config.Config, pending []*caPart) error {
	var names, steps []string
	for _, c := range pending {
		csr := strings.TrimSuffix(c.path, ".pem") + ".csr"
		names = append(names, fmt.Sprintf("%s (%s)", c.conf.Name, c.path))
		steps = append(steps, fmt.Sprintf("`thiqa ca sign --ceremony DIR --csr %s --name %s --out %s.pem` then `thiqa ca import --data %s --name %s --cert %s.pem`",
			csr, c.caName(), c.conf.Name, cfg.Dir(), c.caName(), c.conf.Name))
	}
	return fmt.Errorf("issuing CA certificates are missing: %s. The root is offline: have it certify each CSR in the key ceremony and install the certificate here: %s; then run `thiqa init --data %s` (docs/ceremony.md)",
		strings.Join(names, ", "), strings.Join(steps, "; "), cfg.Dir())
}

// offlineRootFor reads --root-cert and makes the configuration's root
// offline when init writes the configuration; a folder whose root key is
// on its token is refused.
func offlineRootFor(cfg *config.Config, haveConfig bool, path string) (*x509.Certificate, error) {
	if path == "" {
		return nil, nil
	}
	root, err := readRootCertFile(path)
	if err != nil {
		return nil, err
	}
	switch {
	case !cfg.CA.Enabled():
		return nil, errors.New("--root-cert: the configuration runs no CA (ca section)")
	case !haveConfig:
		cfg.CA.Root = config.CAKeyConfig{Name: cfg.CA.Root.Name, Offline: true}
	case !cfg.CA.Root.Offline:
		return nil, fmt.Errorf("--root-cert: the root key of %s is on its token (ca.root.key); an offline root needs a data folder made with --root-cert (nothing was changed)", cfg.Dir())
	}
	return root, nil
}

// caCertificate reads the PEM certificate of the CA name from the data
// folder (ca/NAME.pem).
func caCertificate(cfg *config.Config, name string) (*x509.Certificate, error) {
	path := caCertPath(cfg, name)
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	c, err := parseCertPEM(raw)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return c, nil
}
