package main

import (
	"context"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/thiqa/thiqa/ca"
	"github.com/thiqa/thiqa/policies"
)

// caSign is `thiqa ca sign`: in the key ceremony, the offline root
// certifies an issuing CA from the CSR the online side made (thiqa init
// --root-cert, thiqa ca rollover). The certificate follows EN 319 412-1 /
// RFC 5280 for a CA (cA=true, pathLenConstraint, keyCertSign and cRLSign),
// lists the policies of the profiles the CA issues, and names the root's
// certificate and CRL under the ceremony's publicBaseURL; it is linted
// before the root key signs it. A CSR for a key that is already the
// root's or an issuing CA's is refused, with nothing written.
func caSign(ctx context.Context, env *cliEnv, args []string) error {
	fs := newFlags("ca sign", env)
	dir := fs.String("ceremony", "", "ceremony folder (required)")
	csrFile := fs.String("csr", "", "the issuing CA's certificate signing request, PEM or DER (required)")
	name := fs.String("name", "", "the issuing CA: citizen, organisation or tsa (required)")
	outFile := fs.String("out", "", "where to write the certificate, PEM; must not exist (required)")
	pathLen := fs.Int("path-len", 0, "pathLenConstraint: 0 lets the CA issue end-entity certificates only")
	validity := fs.String("validity", "10y", "lifetime: years (10y), days or a Go duration; cut to the root's notAfter")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *csrFile == "" || *name == "" || *outFile == "" {
		return withExit(2, errors.New("--ceremony, --csr, --name and --out are required"))
	}
	life, err := parseSpan(*validity)
	if err != nil {
		return withExit(2, fmt.Errorf("--validity %w", err))
	}
	csr, err := os.ReadFile(*csrFile)
	if err != nil {
		return fmt.Errorf("reading --csr: %w", err)
	}
	if _, err := os.Stat(*outFile); err == nil {
		return fmt.Errorf("--out %s exists: nothing was signed", *outFile)
	}
	c, err := openCeremony(ctx, *dir, false)
	if err != nil {
		return err
	}
	defer c.close()
	profiles, err := policies.DefaultProfiles(c.cfg.Profiles)
	if err != nil {
		return err
	}
	pols := ca.IssuingCAPolicies(profiles, *name)
	if len(pols) == 0 {
		return withExit(2, fmt.Errorf("--name %q: no certificate profile is issued by such a CA; want one of %s", *name, strings.Join(issuingCANames(profiles), ", ")))
	}
	tok, err := c.openToken(ctx, false)
	if err != nil {
		return err
	}
	defer tok.Close()
	root, key, err := c.root(ctx, tok)
	if err != nil {
		return err
	}
	now := time.Now().UTC().Truncate(time.Second)
	cert, err := ca.CertifyIssuingCA(root, key, ca.IssuingCARequest{
		CSR: csr, BaseURL: c.cfg.PublicBaseURL, Policies: pols, PathLen: *pathLen, NotBefore: now, NotAfter: life.end(now),
		InUse: c.state.inUse(),
	})
	if err != nil {
		return fmt.Errorf("refused to certify %s: %w (nothing was signed)", *csrFile, err)
	}
	certPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: cert.Raw})
	serial := hex.EncodeToString(cert.SerialNumber.Bytes())
	if err := writeFileExclusive(*outFile, certPEM, 0o644); err != nil {
		return fmt.Errorf("writing --out: %w", err)
	}
	kept, err := c.keep("issued", *name+"-"+serial+".pem", certPEM)
	if err != nil {
		return err
	}
	spki, err := spkiHex(cert.PublicKey)
	if err != nil {
		return err
	}
	rec, err := c.record(ctx, actCASign, *name, caSigned{
		Name: *name, Subject: cert.Subject.String(), Serial: serial, SPKISHA256: spki, CertSHA256: sha256Hex(cert.Raw),
		CSRSHA256: sha256Hex(csr), PathLen: *pathLen, NotBefore: cert.NotBefore, NotAfter: cert.NotAfter,
		PublicBaseURL: c.cfg.PublicBaseURL, Policies: pols,
	})
	if err != nil {
		return err
	}
	out := env.stdout
	fmt.Fprintf(out, "issuing CA %s certified by the root\n", *name)
	fmt.Fprintf(out, "  subject       %s\n", cert.Subject)
	fmt.Fprintf(out, "  serial        %s\n", serial)
	fmt.Fprintf(out, "  valid         %s to %s\n", cert.NotBefore.Format(time.RFC3339), cert.NotAfter.Format(time.RFC3339))
	fmt.Fprintf(out, "  key SPKI      SHA-256 %s\n", spki)
	fmt.Fprintf(out, "  URLs          %s, %s\n", cert.IssuingCertificateURL[0], cert.CRLDistributionPoints[0])
	fmt.Fprintf(out, "  certificate   %s (copy in %s)\n", *outFile, kept)
	printRecord(out, rec)
	fmt.Fprintf(out, "SHA-256 fingerprint: %s\n", fingerprint(cert.Raw))
	fmt.Fprintf(out, "next: on the online side: thiqa ca import --data D --name %s --cert %s\n", *name, *outFile)
	return nil
}

// issuingCANames lists the CAs the profiles name as issuers, sorted.
func issuingCANames(profiles *policies.ProfileSet) []string {
	var out []string
	for _, n := range profiles.Names() {
		p, err := profiles.Get(n)
		if err != nil {
			continue
		}
		for _, is := range p.Issuers {
			if !slices.Contains(out, is) {
				out = append(out, is)
			}
		}
	}
	slices.Sort(out)
	return out
}
