package main

import (
	"context"

	"github.com/thiqa/thiqa/hsm/keyring"
)

// runKeys dispatches `thiqa keys list` (keyring.WriteTable prints).
func runKeys(ctx context.Context, env *cliEnv, args []string) error {
	if len(args) == 0 || args[0] != "list" {
		return subcommandUsage(env, "keys", "usage: thiqa keys list --data DIR", args)
	}
	fs := newFlags("keys list", env)
	dir := fs.String("data", "", "data folder (required)")
	if err := parseFlags(fs, args[1:]); err != nil {
		return err
	}
	cfg, err := loadConfig(*dir)
	if err != nil {
		return err
	}
	tok, err := openToken(ctx, cfg, operatorLogger(env, cfg), nil)
	if err != nil {
		return err
	}
	defer tok.Close()
	return keyring.WriteTable(ctx, env.stdout, tok)
}
