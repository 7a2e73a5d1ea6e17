package hierarchy

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/thiqa/thiqa/ca"
	"github.com/thiqa/thiqa/internal/atomicfile"
	"github.com/thiqa/thiqa/internal/audit"
	"github.com/thiqa/thiqa/internal/pemcert"
	"github.com/thiqa/thiqa/policies"
)

// The online side of an offline root: the data folder holds the root's
// certificate only (InstallRoot), each issuing CA's key waits on the online
// token with its CSR for the key ceremony (InitOffline, Rollover), and
// Import installs what the ceremony signed.

// oidAnyPolicy is anyPolicy (RFC 5280 §4.2.1.4).
const oidAnyPolicy = "2.5.29.32.0"

// ReadRoot reads a root certificate given on the command line (flag names
// it in messages): one PEM CA certificate that may sign certificates and
// CRLs, self-signed.
func ReadRoot(path, flag string) (*x509.Certificate, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", flag, err)
	}
	c, err := pemcert.Parse(raw)
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w", flag, path, err)
	}
	if err := CheckRoot(c); err != nil {
		return nil, fmt.Errorf("%s %s: %w", flag, path, err)
	}
	return c, nil
}

// CheckRoot refuses a root certificate that cannot anchor the hierarchy.
func CheckRoot(c *x509.Certificate) error {
	if !c.BasicConstraintsValid || !c.IsCA || c.KeyUsage&x509.KeyUsageCertSign == 0 || c.KeyUsage&x509.KeyUsageCRLSign == 0 {
		return errors.New("not a CA certificate with keyCertSign and cRLSign")
	}
	if !bytes.Equal(c.RawIssuer, c.RawSubject) || c.CheckSignatureFrom(c) != nil {
		return errors.New("not a self-signed root certificate")
	}
	return nil
}

// InstallRoot writes the offline root's certificate to the CA folder, or
// checks that the one there is the same; it returns the file it created,
// if any.
func InstallRoot(c Config, root *x509.Certificate) (string, error) {
	path := CertPath(c.CertDir, c.Root.Name)
	if raw, err := os.ReadFile(path); err == nil {
		have, err := pemcert.Parse(raw)
		if err != nil {
			return "", fmt.Errorf("%s: %w", path, err)
		}
		if !bytes.Equal(have.Raw, root.Raw) {
			return "", fmt.Errorf("%s holds another root (%s, SHA-256 %s) than --root-cert (%s, SHA-256 %s): nothing was changed",
				path, have.Subject, ca.Fingerprint(have.Raw), root.Subject, ca.Fingerprint(root.Raw))
		}
		return "", nil
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return "", fmt.Errorf("creating the CA certificate folder: %w", err)
	}
	if err := atomicfile.WriteNew(path, pemcert.Encode(root.Raw), 0o644); err != nil {
		return "", fmt.Errorf("writing %s: %w", path, err)
	}
	return path, nil
}

// issuer returns the configuration of the issuing CA name.
func (c Config) issuer(name string) (CA, error) {
	for _, is := range c.Issuers {
		if is.Name == name {
			return is, nil
		}
	}
	return CA{}, fmt.Errorf("%q is not an issuing CA of this data folder", name)
}

// Import installs the certificate the offline root signed for the issuing
// CA name, whose key waits on the online token (made by InitOffline or
// Rollover). The certificate must be for that very key, be a CA
// certificate, chain to root and list the policies the CA issues under;
// any refusal changes nothing. It records the import as actor and tells
// out what to do next.
func Import(ctx context.Context, c Config, tok Token, log Auditor, name string, cert, root *x509.Certificate, actor string, out io.Writer) error {
	conf, err := c.issuer(name)
	if err != nil {
		return err
	}
	gens, err := findGenerations(ctx, c, tok, conf)
	if err != nil {
		return err
	}
	i := slices.IndexFunc(gens, (*generation).pending)
	if i < 0 {
		last := gens[len(gens)-1]
		return fmt.Errorf("CA %s has no key awaiting a certificate (generation %d is %s): nothing was changed; a new key comes from `thiqa ca rollover --data %s --name %s`",
			name, last.n, last.describe(), c.Dir, name)
	}
	g := gens[i]
	others := slices.Delete(slices.Clone(gens), i, i+1)
	if err := checkImport(c, g, others, cert, root); err != nil {
		return fmt.Errorf("refused: %w; nothing was changed", err)
	}
	for _, note := range []string{subjectNote(g, cert), urlNote(c, cert)} {
		if note != "" {
			fmt.Fprintln(out, "note: "+note)
		}
	}
	// Recorded before the file appears: a run again finds the CA
	// installed and stops, so a record missing then stays missing.
	// Without the file, the run again installs and records it again.
	if _, err := log.Append(ctx, audit.Entry{
		Actor: actor, Action: "ca.certificate.import", Object: g.name, Outcome: audit.OutcomeSuccess,
		Details: map[string]any{"ca": name, "generation": g.n, "serial": hex.EncodeToString(cert.SerialNumber.Bytes()),
			"subject": cert.Subject.String(), "issuer": cert.Issuer.String(), "notAfter": cert.NotAfter, "sha256": sha256Hex(cert.Raw), "key": g.uri},
	}); err != nil {
		return fmt.Errorf("writing audit record: %w (nothing was installed)", err)
	}
	if err := atomicfile.WriteNew(g.certPath, pemcert.Encode(cert.Raw), 0o644); err != nil {
		return fmt.Errorf("writing %s: %w (the audit log records the import, but the certificate is not installed: run the command again)", g.certPath, err)
	}
	fmt.Fprintf(out, "issuing CA %s installed: %s (generation %d, key %s)\n", name, g.certPath, g.n, g.uri)
	fmt.Fprintf(out, "  subject   %s\n  valid     %s to %s\n  SHA-256 fingerprint: %s\n", cert.Subject,
		cert.NotBefore.Format(time.RFC3339), cert.NotAfter.Format(time.RFC3339), ca.Fingerprint(cert.Raw))
	if g.n > 1 {
		fmt.Fprintf(out, "next: restart thiqa serve: new %s certificates come from %s (its certificate at /certs/%s.crt); %s keeps its CRL and OCSP answers\n",
			name, g.name, g.name, GenerationName(name, g.n-1))
		return nil
	}
	var waiting []string
	for _, other := range c.Issuers {
		og, err := findGeneration(ctx, c, tok, other, 1)
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
	fmt.Fprintf(out, "every issuing CA has its certificate: run `thiqa init --data %s` (OCSP responders, TSA unit, …), import the root CRL (thiqa ca crl import) and serve\n", c.Dir)
	return nil
}

// checkImport checks that cert may become generation g of its CA: it is
// for g's key on the online token, it names the same CA as the CA's other
// generations with a certificate (others: checkImportSubject), it is a CA
// certificate that may sign certificates and CRLs, valid now, chaining to
// the configured root, and it allows the policies the CA issues under.
func checkImport(c Config, g *generation, others []*generation, cert, root *x509.Certificate) error {
	pub, ok := publicOf(g.key)
	if !ok || !pub.Equal(cert.PublicKey) {
		return fmt.Errorf("the certificate is for another key than the one waiting on the online token for CA %s (%s, CSR %s)", g.conf.Name, g.uri, g.csrPath)
	}
	if err := checkImportSubject(g, others, cert); err != nil {
		return err
	}
	if !cert.BasicConstraintsValid || !cert.IsCA || cert.KeyUsage&x509.KeyUsageCertSign == 0 || cert.KeyUsage&x509.KeyUsageCRLSign == 0 {
		return errors.New("the certificate is not a CA certificate with keyCertSign and cRLSign")
	}
	pool := x509.NewCertPool()
	pool.AddCert(root)
	if _, err := cert.Verify(x509.VerifyOptions{Roots: pool, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny}}); err != nil {
		return fmt.Errorf("the certificate does not chain to the configured root %s (SHA-256 %s): %v", root.Subject, ca.Fingerprint(root.Raw), err)
	}
	profiles, err := policies.DefaultProfiles(c.Profiles)
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
func urlNote(c Config, cert *x509.Certificate) string {
	crlURL := c.BaseURL + "/crl/root.crl"
	if len(cert.CRLDistributionPoints) == 1 && cert.CRLDistributionPoints[0] == crlURL {
		return ""
	}
	return fmt.Sprintf("the certificate names the root's CRL at %v, not %s where this deployment publishes it: relying parties fetch it there (an existing national root publishes its own; otherwise check publicBaseURL in ceremony.yaml)",
		cert.CRLDistributionPoints, crlURL)
}

// Rollover gives the issuing CA name a new key on the online token (its
// next generation) and writes its CSR for the key ceremony, recording both
// as actor and telling out what to do next. Nothing changes for the CA
// until Import installs the certificate: then, after a restart, new
// certificates come from the new generation while the old one keeps
// signing its CRL and OCSP answers until its last certificate has expired.
// A generation already waiting gets its CSR again instead; when the CSR
// is missing, the run that generated its key may have stopped before
// recording the rollover, and the rollover is recorded first. The new
// generation names the same CA: a subject (from thiqa.yaml, or in the
// waiting CSR) whose C, O or organizationIdentifier is not the current
// generation's (checkRolloverSubject) is refused (SubjectChangeError)
// before anything is generated, recorded or written.
func Rollover(ctx context.Context, c Config, tok Token, log Auditor, name, actor string, out io.Writer) error {
	conf, err := c.issuer(name)
	if err != nil {
		return err
	}
	gens, err := findGenerations(ctx, c, tok, conf)
	if err != nil {
		return err
	}
	cur := currentGeneration(gens)
	for _, g := range gens {
		switch {
		case g.pending():
			// A generation waiting since before this check may have a
			// CSR written from an edited thiqa.yaml: caught here, before
			// anything is recorded or written.
			if cur != nil {
				if err := checkRolloverSubject(g, cur); err != nil {
					return err
				}
			}
			if g.n > 1 && !g.hasCSR {
				// The key of a rollover without its CSR: the run that
				// generated it may have stopped before its ca.rollover
				// record, and the run again would otherwise only write
				// the CSR. Recorded again when the stop came after the
				// record (a duplicate rather than a record lost).
				if err := recordRollover(ctx, log, g, name, actor, true); err != nil {
					return err
				}
			}
			if err := writeCSR(ctx, log, g, actor); err != nil {
				return err
			}
			fmt.Fprintf(out, "CA %s: generation %d (key %s) already waits for its certificate: CSR %s\n", name, g.n, g.uri, g.csrPath)
			fmt.Fprintf(out, "next: thiqa ca sign --ceremony DIR --csr %s --name %s --out %s.pem, then thiqa ca import --data %s --name %s --cert %s.pem\n",
				g.csrPath, name, g.name, c.Dir, name, g.name)
			return nil
		case g.cert == nil:
			return fmt.Errorf("CA %s: generation %d has no key on the token but leaves %s behind: move it away first (nothing was changed)", name, g.n, g.csrPath)
		}
	}
	g, err := findGeneration(ctx, c, tok, conf, len(gens)+1)
	if err != nil {
		return err
	}
	// The new key's CSR takes its subject from thiqa.yaml: refused before
	// any key exists when it would name another CA than the current
	// generation (thiqa.yaml edited since).
	if cur != nil {
		if err := checkRolloverSubject(g, cur); err != nil {
			return err
		}
	}
	if g.key, err = tok.GenerateKey(ctx, g.label, conf.KeyType); err != nil {
		return fmt.Errorf("generating key %s: %w", g.uri, err)
	}
	// Recorded before the CSR: a run again that finds the generation
	// waiting without its CSR records the rollover (again) before writing
	// the CSR, so a stop before this record loses nothing; with the CSR
	// there, the record is known to be written.
	if err := recordRollover(ctx, log, g, name, actor, false); err != nil {
		return err
	}
	if err := writeCSR(ctx, log, g, actor); err != nil {
		return err
	}
	fmt.Fprintf(out, "CA %s: new key for generation %d (%s): %s\n", name, g.n, g.name, g.key.URI())
	fmt.Fprintf(out, "  CSR  %s\n", g.csrPath)
	fmt.Fprintf(out, "next: thiqa ca sign --ceremony DIR --csr %s --name %s --out %s.pem, then thiqa ca import --data %s --name %s --cert %s.pem\n",
		g.csrPath, name, g.name, c.Dir, name, g.name)
	return nil
}

// recordRollover records the rollover of the CA name to generation g, as
// actor; resumed says a later run than the one that generated g's key
// records it (that run stopped before its record, or just after it).
func recordRollover(ctx context.Context, log Auditor, g *generation, name, actor string, resumed bool) error {
	details := map[string]any{"generation": g.n, "issuer": g.name, "key": g.key.URI(), "csr": g.csrPath}
	if resumed {
		details["resumed"] = true
	}
	if _, err := log.Append(ctx, audit.Entry{Actor: actor, Action: "ca.rollover", Object: name, Outcome: audit.OutcomeSuccess, Details: details}); err != nil {
		return fmt.Errorf("writing audit record: %w (key %s was generated, and its generation recorded: run the command again to write its CSR)", err, g.key.URI())
	}
	return nil
}

// checkCSR refuses the CSR file of generation g when it is not a CSR for
// g's key on the token.
func checkCSR(g *generation) error {
	csr, err := readCSR(g)
	if err != nil {
		return err
	}
	if pub, ok := publicOf(g.key); !ok || !pub.Equal(csr.PublicKey) {
		return fmt.Errorf("CA %s: %s is the CSR of another key than %s on the token (a key that is gone): move it away and run the command again to write the CSR of the key on the token (nothing was changed)", g.name, g.csrPath, g.uri)
	}
	return nil
}

// pemCSR returns der as a PEM CERTIFICATE REQUEST block.
func pemCSR(der []byte) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: der})
}

// sha256Hex is the lower-case hex SHA-256 of b.
func sha256Hex(b []byte) string {
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}
