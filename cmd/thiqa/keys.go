package main

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"text/tabwriter"

	"github.com/thiqa/thiqa/ca"
)

// runKeys dispatches `thiqa keys list`.
func runKeys(ctx context.Context, env *cliEnv, args []string) error {
	if len(args) == 0 || args[0] != "list" {
		return withExit(2, errors.New("usage: thiqa keys list --data DIR"))
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
	keys, err := tok.ListKeys(ctx)
	if err != nil {
		return fmt.Errorf("listing keys: %w", err)
	}
	tw := tabwriter.NewWriter(env.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "URI\tTYPE\tID\tSPKI-SHA256")
	for _, k := range keys {
		spki := "-"
		if h, err := ca.SPKIHash(k.Public); k.Public != nil && err == nil {
			spki = hex.EncodeToString(h[:])
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", k.URI, k.Type, k.ID, spki)
	}
	return tw.Flush()
}
