package hierarchy

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

	"github.com/thiqa/thiqa/internal/pemcert"
	"github.com/thiqa/thiqa/policies"
)

// An issuing CA rolled over (Rollover) has several generations, each a key
// of its own and a certificate from the root:
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

// GenerationName is the issuer name of generation n of the CA name.
func GenerationName(name string, n int) string {
	if n <= 1 {
		return name
	}
	return name + "_" + strconv.Itoa(n)
}

// generation is one generation of an issuing CA as found on the token
// and in the data folder.
type generation struct {
	conf  CA // the CA's configuration
	n     int
	name  string // issuer name
	label string
	uri   string
	key   Key // nil when the token has no such key
	cert  *x509.Certificate
	// certPath and csrPath are its certificate (PEM) and CSR (PEM) files.
	certPath, csrPath string
	hasCSR            bool
}

// pending says the generation's key waits for its certificate.
func (g *generation) pending() bool { return g.key != nil && g.cert == nil }

// describe says what a generation has, for messages.
func (g *generation) describe() string {
	switch {
	case g.cert != nil:
		return "installed (" + g.certPath + ")"
	case g.key == nil:
		return "without a key on the token"
	}
	return "waiting for its certificate"
}

// generationPaths returns the certificate and CSR files of a generation.
func generationPaths(certDir, name string, n int) (string, string) {
	base := filepath.Join(certDir, GenerationName(name, n))
	return base + ".pem", base + ".csr"
}

// findGeneration looks up generation n of the CA conf describes.
func findGeneration(ctx context.Context, c Config, tok Token, conf CA, n int) (*generation, error) {
	g := &generation{conf: conf, n: n, name: GenerationName(conf.Name, n), label: conf.KeyLabel, uri: conf.Key}
	if n > 1 {
		g.label = conf.KeyLabel + "-" + strconv.Itoa(n)
		g.uri = strings.Replace(conf.Key, "object="+conf.KeyLabel, "object="+g.label, 1)
	}
	g.certPath, g.csrPath = generationPaths(c.CertDir, conf.Name, n)
	switch k, err := tok.FindKey(ctx, g.label); {
	case err == nil:
		g.key = k
	case !errors.Is(err, ErrKeyNotFound):
		return nil, fmt.Errorf("CA %s: finding key %q: %w", g.name, g.label, err)
	}
	var err error
	if g.cert, err = readCert(g.certPath); err != nil {
		return nil, fmt.Errorf("CA %s: %w", g.name, err)
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
func findGenerations(ctx context.Context, c Config, tok Token, conf CA) ([]*generation, error) {
	var out []*generation
	for n := 1; ; n++ {
		g, err := findGeneration(ctx, c, tok, conf, n)
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
func laterGenerationParts(ctx context.Context, c Config, tok Token) ([]*Part, error) {
	var out []*Part
	for _, conf := range c.Issuers {
		gens, err := findGenerations(ctx, c, tok, conf)
		if err != nil {
			return nil, err
		}
		for _, g := range gens[1:] {
			if g.cert == nil {
				continue
			}
			gc := conf
			gc.Name, gc.Key, gc.KeyLabel = g.name, g.uri, g.label
			out = append(out, &Part{Conf: gc, Key: g.key, Cert: g.cert, Path: g.certPath, ca: conf.Name, gen: g.n})
		}
	}
	return out, nil
}

// CurrentGenerations maps each CA to its highest generation with a
// certificate among parts (as Find returns them: the root first).
func CurrentGenerations(parts []*Part) map[string]int {
	cur := map[string]int{}
	for _, p := range parts[1:] {
		if p.Cert != nil && p.Generation() > cur[p.CA()] {
			cur[p.CA()] = p.Generation()
		}
	}
	return cur
}

// KeyDestroyed reports whether p is an older generation of its CA whose
// key is gone from the token (destroyed once retired): it is skipped, not
// an error.
func KeyDestroyed(p *Part, current map[string]int) bool {
	return p.Key == nil && p.Cert != nil && p.Generation() < current[p.CA()]
}

// Issued says until when the certificates a CA issued are valid.
type Issued interface {
	// LiveUntil returns the latest notAfter of the certificates issuer
	// issued, those of profile except aside; false when there are none.
	LiveUntil(ctx context.Context, issuer, except string) (time.Time, bool, error)
}

// Retired reports whether p, an older generation of its CA, has nothing
// left to answer for: its certificate expired, or every certificate it
// issued (its OCSP responders' aside) has.
func Retired(ctx context.Context, issued Issued, p *Part, current map[string]int, now time.Time) (bool, error) {
	if p.Generation() >= current[p.CA()] {
		return false, nil
	}
	if !now.Before(p.Cert.NotAfter) {
		return true, nil
	}
	until, ok, err := issued.LiveUntil(ctx, p.Conf.Name, policies.ProfileOCSPResponder)
	if err != nil {
		return false, err
	}
	return !ok || !now.Before(until), nil
}

// InstalledGenerations returns the certificates of the CA name's
// generations after the first, from the CA folder alone (no token): what
// relying parties must also trust as that CA.
func InstalledGenerations(certDir, name string) ([]*x509.Certificate, error) {
	var out []*x509.Certificate
	for n := 2; ; n++ {
		certPath, _ := generationPaths(certDir, name, n)
		c, err := readCert(certPath)
		if err != nil {
			return nil, err
		}
		if c == nil {
			return out, nil
		}
		out = append(out, c)
	}
}

// Generations returns the certificates of every installed generation of
// the CA name, the first one first, from the CA folder alone: what relying
// parties trust as that CA. The first generation's certificate must be
// there.
func Generations(certDir, name string) ([]*x509.Certificate, error) {
	path := CertPath(certDir, name)
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	first, err := pemcert.Parse(raw)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	later, err := InstalledGenerations(certDir, name)
	if err != nil {
		return nil, err
	}
	return append([]*x509.Certificate{first}, later...), nil
}

// GenerationsPool returns a pool of the certificates of every installed
// generation of the CA name (Generations): the trust anchor of what that
// CA alone issued (a certificate of another CA does not even chain).
func GenerationsPool(certDir, name string) (*x509.CertPool, error) {
	certs, err := Generations(certDir, name)
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	for _, c := range certs {
		pool.AddCert(c)
	}
	return pool, nil
}
