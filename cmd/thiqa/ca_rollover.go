package main

import (
	"context"
	"errors"
	"fmt"

	"github.com/thiqa/thiqa/ca/hierarchy"
	"github.com/thiqa/thiqa/cmd/thiqa/internal/config"
	"github.com/thiqa/thiqa/hsm/keyring"
)

// caRollover is `thiqa ca rollover`: it gives an issuing CA a new key on
// the online token (its next generation) and writes its CSR for the key
// ceremony (hierarchy.Rollover).
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
	var h hierarchy.Config
	p, closePlatform, err := openOperatorFolder(ctx, env, *dir, func(cfg *config.Config) error {
		if err := checkIssuingCA(cfg, *name); err != nil {
			return err
		}
		if !cfg.CA.Root.Offline {
			return fmt.Errorf("the root key of %s is on its token (development): a rollover's CSR is certified by the offline root in the key ceremony (docs/ceremony.md); take this root offline first (thiqa ca root adopt, thiqa ca root retire-online: docs/ceremony.md, Taking an existing online root offline)", cfg.Dir())
		}
		var err error
		h, err = hierarchyConfig(cfg)
		return err
	})
	if err != nil {
		return err
	}
	defer closePlatform()
	return hierarchy.Rollover(ctx, h, keyring.CAToken{Token: p.token, Audit: p.audit}, p.audit, *name, operatorName(), env.stdout)
}
