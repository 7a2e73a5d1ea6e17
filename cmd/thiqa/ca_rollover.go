package main

import (
	"context"
	"errors"
	"fmt"

	"github.com/thiqa/thiqa/hsm"
	"github.com/thiqa/thiqa/internal/audit"
)

// caRollover is `thiqa ca rollover`: it gives an issuing CA a new key on
// the online token (its next generation) and writes its CSR for the key
// ceremony. Nothing changes for the CA until `thiqa ca import` installs the
// certificate: then, after a restart, new certificates come from the new
// generation while the old one keeps signing its CRL and OCSP answers
// until its last certificate has expired (cagenerations.go).
func caRollover(ctx context.Context, env *cliEnv, args []string) error {
	fs := newFlags("ca rollover", env)
	dir := fs.String("data", "", "data folder (required)")
	name := fs.String("name", "", "the issuing CA: citizen, organisation or tsa (required)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *name == "" {
		return withExit(2, errors.New("--data and --name are required"))
	}
	cfg, err := loadConfig(*dir)
	if err != nil {
		return err
	}
	conf, err := issuingCAConf(cfg, *name)
	if err != nil {
		return err
	}
	if !cfg.CA.Root.Offline {
		return fmt.Errorf("the root key of %s is on its token (development): a rollover's CSR is certified by the offline root in the key ceremony (docs/ceremony.md)", cfg.Dir())
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
	for _, g := range gens {
		switch {
		case g.pending():
			if err := writeIssuingCSR(ctx, p, g, operatorName()); err != nil {
				return err
			}
			fmt.Fprintf(env.stdout, "CA %s: generation %d (key %s) already waits for its certificate: CSR %s\n", *name, g.n, g.uri, g.csrPath)
			fmt.Fprintf(env.stdout, "next: thiqa ca sign --ceremony DIR --csr %s --name %s --out %s.pem, then thiqa ca import --data %s --name %s --cert %s.pem\n",
				g.csrPath, *name, g.name, cfg.Dir(), *name, g.name)
			return nil
		case g.cert == nil:
			return fmt.Errorf("CA %s: generation %d has no key on the token but leaves %s behind: move it away first (nothing was changed)", *name, g.n, g.csrPath)
		}
	}
	g, err := findGeneration(ctx, cfg, p.token, conf, len(gens)+1)
	if err != nil {
		return err
	}
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
	if err := writeIssuingCSR(ctx, p, g, operatorName()); err != nil {
		return err
	}
	if _, err := p.audit.Append(ctx, audit.Entry{Actor: operatorName(), Action: "ca.rollover", Object: *name, Outcome: audit.OutcomeSuccess,
		Details: map[string]any{"generation": g.n, "issuer": g.name, "key": g.key.URI(), "csr": g.csrPath}}); err != nil {
		return fmt.Errorf("writing audit record: %w", err)
	}
	out := env.stdout
	fmt.Fprintf(out, "CA %s: new key for generation %d (%s): %s\n", *name, g.n, g.name, g.key.URI())
	fmt.Fprintf(out, "  CSR  %s\n", g.csrPath)
	fmt.Fprintf(out, "next: thiqa ca sign --ceremony DIR --csr %s --name %s --out %s.pem, then thiqa ca import --data %s --name %s --cert %s.pem\n",
		g.csrPath, *name, g.name, cfg.Dir(), *name, g.name)
	return nil
}
