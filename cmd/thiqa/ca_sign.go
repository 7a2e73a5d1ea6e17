package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/thiqa/thiqa/ca"
	"github.com/thiqa/thiqa/ca/ceremony"
	"github.com/thiqa/thiqa/policies"
)

// caSign is `thiqa ca sign`: in the key ceremony, the offline root
// certifies an issuing CA from the CSR the online side made
// (ceremony.Folder.CertifyIssuingCA), with the policies of the profiles
// the CA issues under.
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
	life, err := ceremony.ParseLifetime(*validity)
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
	c, cfg, err := openCeremony(ctx, *dir, false)
	if err != nil {
		return err
	}
	defer c.Close()
	profiles, err := policies.DefaultProfiles(cfg.Profiles)
	if err != nil {
		return err
	}
	pols := ca.IssuingCAPolicies(profiles, *name)
	if len(pols) == 0 {
		return withExit(2, fmt.Errorf("--name %q: no certificate profile is issued by such a CA; want one of %s", *name, strings.Join(ca.IssuingCANames(profiles), ", ")))
	}
	now := time.Now().UTC().Truncate(time.Second)
	return c.CertifyIssuingCA(ctx, ceremony.IssuingRequest{Name: *name, CSR: csr, CSRFile: *csrFile, Policies: pols, PathLen: *pathLen,
		NotBefore: now, NotAfter: life.End(now), Out: *outFile}, env.stdout)
}
