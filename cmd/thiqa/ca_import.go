package main

import (
	"context"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/thiqa/thiqa/ca"
	"github.com/thiqa/thiqa/cmd/thiqa/internal/config"
	"github.com/thiqa/thiqa/internal/audit"
	"github.com/thiqa/thiqa/policies"
)

// oidAnyPolicy is anyPolicy (RFC 5280 §4.2.1.4).
const oidAnyPolicy = "2.5.29.32.0"

// caImport is `thiqa ca import`: it installs the certificate the offline
// root signed for an issuing CA whose key waits on the online token (made
// by `thiqa init --root-cert` or `thiqa ca rollover`). The certificate
// must be for that very key, be a CA certificate, chain to the configured
// root and list the policies the CA issues under; any refusal changes
// nothing.
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
	cfg, err := loadConfig(*dir)
	if err != nil {
		return err
	}
	conf, err := issuingCAConf(cfg, *name)
	if err != nil {
		return err
	}
	raw, err := os.ReadFile(*certFile)
	if err != nil {
		return fmt.Errorf("reading --cert: %w", err)
	}
	cert, err := parseCertPEM(raw)
	if err != nil {
		return fmt.Errorf("--cert %s: %w", *certFile, err)
	}
	root, err := caCertificate(cfg, cfg.CA.Root.Name)
	if err != nil {
		return fmt.Errorf("the configured root certificate: %w", err)
	}
	p, closePlatform, err := openOperatorPlatform(ctx, env, cfg)
	if err != nil {
		return err
	}
	defer closePlatform()
	gens, err := findGenerations(ctx, cfg, p.token, conf)
	if err != nil {
		return err
	}
	i := slices.IndexFunc(gens, (*caGeneration).pending)
	if i < 0 {
		last := gens[len(gens)-1]
		return fmt.Errorf("CA %s has no key awaiting a certificate (generation %d is %s): nothing was changed; a new key comes from `thiqa ca rollover --data %s --name %s`",
			*name, last.n, describeGeneration(last), cfg.Dir(), *name)
	}
	g := gens[i]
	if err := checkImport(cfg, g, cert, root); err != nil {
		return fmt.Errorf("refused: %w; nothing was changed", err)
	}
	if note := urlNote(cfg, cert); note != "" {
		fmt.Fprintln(env.stdout, "note: "+note)
	}
	if err := writeFileExclusive(g.certPath, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: cert.Raw}), 0o644); err != nil {
		return fmt.Errorf("writing %s: %w", g.certPath, err)
	}
	if _, err := p.audit.Append(ctx, audit.Entry{
		Actor: operatorName(), Action: "ca.certificate.import", Object: g.name, Outcome: audit.OutcomeSuccess,
		Details: map[string]any{"ca": *name, "generation": g.n, "serial": hex.EncodeToString(cert.SerialNumber.Bytes()),
			"subject": cert.Subject.String(), "issuer": cert.Issuer.String(), "notAfter": cert.NotAfter, "sha256": sha256Hex(cert.Raw), "key": g.uri},
	}); err != nil {
		return fmt.Errorf("certificate installed as %s, but writing the audit record failed: %w", g.certPath, err)
	}
	out := env.stdout
	fmt.Fprintf(out, "issuing CA %s installed: %s (generation %d, key %s)\n", *name, g.certPath, g.n, g.uri)
	fmt.Fprintf(out, "  subject   %s\n  valid     %s to %s\n  SHA-256 fingerprint: %s\n", cert.Subject,
		cert.NotBefore.Format(time.RFC3339), cert.NotAfter.Format(time.RFC3339), fingerprint(cert.Raw))
	if g.n > 1 {
		fmt.Fprintf(out, "next: restart thiqa serve: new %s certificates come from %s (its certificate at /certs/%s.crt); %s keeps its CRL and OCSP answers\n",
			*name, g.name, g.name, generationName(*name, g.n-1))
		return nil
	}
	var waiting []string
	for _, other := range cfg.CA.Issuers {
		og, err := findGeneration(ctx, cfg, p.token, other, 1)
		if err != nil {
			return err
		}
		if og.cert == nil {
			waiting = append(waiting, other.Name)
		}
	}
	if len(waiting) > 0 {
		fmt.Fprintf(out, "still waiting for their certificates: %s\n", strings.Join(waiting, ", "))
		return nil
	}
	fmt.Fprintf(out, "every issuing CA has its certificate: run `thiqa init --data %s` (OCSP responders, TSA unit, …), import the root CRL (thiqa ca crl import) and serve\n", cfg.Dir())
	return nil
}

// issuingCAConf returns the configuration of the issuing CA name.
func issuingCAConf(cfg *config.Config, name string) (config.CAKeyConfig, error) {
	if !cfg.CA.Enabled() {
		return config.CAKeyConfig{}, errors.New("this data folder runs no CA (ca section of thiqa.yaml)")
	}
	var names []string
	for _, c := range cfg.CA.Issuers {
		if c.Name == name {
			return c, nil
		}
		names = append(names, c.Name)
	}
	return config.CAKeyConfig{}, withExit(2, fmt.Errorf("--name %q: not an issuing CA of this data folder (%s)", name, strings.Join(names, ", ")))
}

// describeGeneration says what a generation has, for messages.
func describeGeneration(g *caGeneration) string {
	switch {
	case g.cert != nil:
		return "installed (" + g.certPath + ")"
	case g.key == nil:
		return "without a key on the token"
	}
	return "waiting for its certificate"
}

// checkImport checks that cert may become generation g of its CA: it is
// for g's key on the online token, a CA certificate that may sign
// certificates and CRLs, valid now, chaining to the configured root, and
// it allows the policies the CA issues under.
func checkImport(cfg *config.Config, g *caGeneration, cert, root *x509.Certificate) error {
	pub, ok := publicOf(g.key)
	if !ok || !pub.Equal(cert.PublicKey) {
		return fmt.Errorf("the certificate is for another key than the one waiting on the online token for CA %s (%s, CSR %s)", g.conf.Name, g.uri, g.csrPath)
	}
	if !cert.BasicConstraintsValid || !cert.IsCA || cert.KeyUsage&x509.KeyUsageCertSign == 0 || cert.KeyUsage&x509.KeyUsageCRLSign == 0 {
		return errors.New("the certificate is not a CA certificate with keyCertSign and cRLSign")
	}
	pool := x509.NewCertPool()
	pool.AddCert(root)
	if _, err := cert.Verify(x509.VerifyOptions{Roots: pool, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny}}); err != nil {
		return fmt.Errorf("the certificate does not chain to the configured root %s (SHA-256 %s): %v", root.Subject, fingerprint(root.Raw), err)
	}
	profiles, err := policies.DefaultProfiles(cfg.CA.Profiles)
	if err != nil {
		return err
	}
	have := map[string]bool{}
	for _, p := range cert.Policies {
		have[p.String()] = true
	}
	if !have[oidAnyPolicy] {
		for _, want := range ca.IssuingCAPolicies(profiles, g.conf.Name) {
			if !have[want] {
				return fmt.Errorf("the certificate does not list policy %s, under which CA %s issues (ca.profiles of thiqa.yaml and of ceremony.yaml must agree)", want, g.conf.Name)
			}
		}
	}
	return nil
}

// urlNote says when the certificate names the root's certificate or CRL
// elsewhere than this deployment publishes them (an existing national
// root publishes its own; otherwise ceremony.yaml's publicBaseURL is
// probably wrong).
func urlNote(cfg *config.Config, cert *x509.Certificate) string {
	crlURL := cfg.PublicBaseURL + "/crl/root.crl"
	if len(cert.CRLDistributionPoints) == 1 && cert.CRLDistributionPoints[0] == crlURL {
		return ""
	}
	return fmt.Sprintf("the certificate names the root's CRL at %v, not %s where this deployment publishes it: relying parties fetch it there (an existing national root publishes its own; otherwise check publicBaseURL in ceremony.yaml)",
		cert.CRLDistributionPoints, crlURL)
}
