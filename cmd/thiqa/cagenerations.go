package main

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/thiqa/thiqa/cmd/thiqa/internal/config"
	"github.com/thiqa/thiqa/hsm"
	"github.com/thiqa/thiqa/policies"
	"github.com/thiqa/thiqa/store"
)

// An issuing CA rolled over (thiqa ca rollover) has several generations,
// each a key of its own and a certificate from the root:
//
//	generation  issuer name  key label          certificate, CSR          URLs in its certificates
//	1           citizen      citizen-ca (conf)  ca/citizen.pem, .csr      /certs/citizen.crt, /crl/citizen.crl
//	n ≥ 2       citizen_n    citizen-ca-n       ca/citizen_n.pem, .csr    /certs/citizen_n.crt, /crl/citizen_n.crl
//
// The issuer name is the CA's name in the store, the CRL's and the OCSP
// responder's, so each generation answers for the certificates it issued
// ("-" would read as a CRL partition). The highest generation with a
// certificate issues; the older ones keep signing their CRLs and OCSP
// answers until their last certificate has expired, and their certificate
// stays at its URL.

// generationName is the issuer name of generation n of the CA name.
func generationName(name string, n int) string {
	if n <= 1 {
		return name
	}
	return name + "_" + strconv.Itoa(n)
}

// caGeneration is one generation of an issuing CA as found on the token
// and in the data folder.
type caGeneration struct {
	conf  config.CAKeyConfig // the CA's configuration
	n     int
	name  string // issuer name
	label string
	uri   string
	key   *hsm.Signer // nil when the token has no such key
	cert  *x509.Certificate
	// certPath and csrPath are its certificate (PEM) and CSR (PEM) files.
	certPath, csrPath string
	hasCSR            bool
}

// pending says the generation's key waits for its certificate.
func (g *caGeneration) pending() bool { return g.key != nil && g.cert == nil }

// generationPaths returns the certificate and CSR files of a generation.
func generationPaths(cfg *config.Config, name string, n int) (string, string) {
	base := filepath.Join(cfg.Resolve(cfg.CA.CertDir), generationName(name, n))
	return base + ".pem", base + ".csr"
}

// findGeneration looks up generation n of the CA conf describes.
func findGeneration(ctx context.Context, cfg *config.Config, tok *hsm.Token, conf config.CAKeyConfig, n int) (*caGeneration, error) {
	label, err := keyLabel(cfg, conf.Key)
	if err != nil {
		return nil, fmt.Errorf("CA %s: %w", conf.Name, err)
	}
	g := &caGeneration{conf: conf, n: n, name: generationName(conf.Name, n), label: label, uri: conf.Key}
	if n > 1 {
		g.label = label + "-" + strconv.Itoa(n)
		g.uri = strings.Replace(conf.Key, "object="+label, "object="+g.label, 1)
	}
	g.certPath, g.csrPath = generationPaths(cfg, conf.Name, n)
	switch k, err := tok.FindKey(ctx, g.label); {
	case err == nil:
		g.key = k
	case !errors.Is(err, hsm.ErrKeyNotFound):
		return nil, fmt.Errorf("CA %s: finding key %q: %w", g.name, g.label, err)
	}
	raw, err := os.ReadFile(g.certPath)
	switch {
	case err == nil:
		if g.cert, err = parseCertPEM(raw); err != nil {
			return nil, fmt.Errorf("CA %s: %s: %w", g.name, g.certPath, err)
		}
	case !errors.Is(err, os.ErrNotExist):
		return nil, fmt.Errorf("CA %s: reading %s: %w", g.name, g.certPath, err)
	}
	if _, err := os.Stat(g.csrPath); err == nil {
		g.hasCSR = true
	}
	if pub, ok := publicOf(g.key); ok && g.cert != nil && !pub.Equal(g.cert.PublicKey) {
		return nil, fmt.Errorf("CA %s: key %s does not match the certificate in %s", g.name, g.uri, g.certPath)
	}
	return g, nil
}

// findGenerations returns the generations of one CA from 1 up to the last
// one that has a key, a certificate or a CSR.
func findGenerations(ctx context.Context, cfg *config.Config, tok *hsm.Token, conf config.CAKeyConfig) ([]*caGeneration, error) {
	var out []*caGeneration
	for n := 1; ; n++ {
		g, err := findGeneration(ctx, cfg, tok, conf, n)
		if err != nil {
			return nil, err
		}
		if n > 1 && g.key == nil && g.cert == nil && !g.hasCSR {
			return out, nil
		}
		out = append(out, g)
	}
}

// laterGenerationParts returns, for every issuing CA, its generations
// after the first that have their certificate, as parts of the hierarchy.
func laterGenerationParts(ctx context.Context, cfg *config.Config, tok *hsm.Token) ([]*caPart, error) {
	var out []*caPart
	for _, conf := range cfg.CA.Issuers {
		gens, err := findGenerations(ctx, cfg, tok, conf)
		if err != nil {
			return nil, err
		}
		for _, g := range gens[1:] {
			if g.cert == nil {
				continue
			}
			c := conf
			c.Name, c.Key = g.name, g.uri
			out = append(out, &caPart{conf: c, uri: g.uri, label: g.label, key: g.key, cert: g.cert, path: g.certPath, ca: conf.Name, gen: g.n})
		}
	}
	return out, nil
}

// currentGenerations maps each CA to its highest generation with a
// certificate among parts.
func currentGenerations(parts []*caPart) map[string]int {
	cur := map[string]int{}
	for _, c := range parts[1:] {
		if c.cert != nil && c.generation() > cur[c.caName()] {
			cur[c.caName()] = c.generation()
		}
	}
	return cur
}

// keyDestroyed reports whether c is an older generation of its CA whose
// key is gone from the token (destroyed once retired): it is skipped, not
// an error.
func keyDestroyed(c *caPart, current map[string]int) bool {
	return c.key == nil && c.cert != nil && c.generation() < current[c.caName()]
}

// retired reports whether c, an older generation of its CA, has nothing
// left to answer for: its certificate expired, or every certificate it
// issued (its OCSP responders' aside) has.
func retired(ctx context.Context, certs *store.Certificates, c *caPart, current map[string]int, now time.Time) (bool, error) {
	if c.generation() >= current[c.caName()] {
		return false, nil
	}
	if !now.Before(c.cert.NotAfter) {
		return true, nil
	}
	until, ok, err := certs.LiveUntil(ctx, c.conf.Name, policies.ProfileOCSPResponder)
	if err != nil {
		return false, err
	}
	return !ok || !now.Before(until), nil
}

// installedGenerations returns the certificates of the CA name's
// generations after the first, from the data folder alone (no token):
// what relying parties must also trust as that CA.
func installedGenerations(cfg *config.Config, name string) ([]*x509.Certificate, error) {
	var out []*x509.Certificate
	for n := 2; ; n++ {
		certPath, _ := generationPaths(cfg, name, n)
		raw, err := os.ReadFile(certPath)
		if errors.Is(err, os.ErrNotExist) {
			return out, nil
		}
		if err != nil {
			return nil, err
		}
		c, err := parseCertPEM(raw)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", certPath, err)
		}
		out = append(out, c)
	}
}
