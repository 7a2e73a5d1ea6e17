package main

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"

	"github.com/thiqa/thiqa/internal/audit"
	"github.com/thiqa/thiqa/internal/config"
)

// runAudit dispatches `thiqa audit verify`.
func runAudit(ctx context.Context, env *cliEnv, args []string) error {
	if len(args) == 0 || args[0] != "verify" {
		return withExit(2, errors.New("usage: thiqa audit verify --data DIR"))
	}
	fs := newFlags("audit verify", env)
	dir := fs.String("data", "", "data folder (required)")
	if err := parseFlags(fs, args[1:]); err != nil {
		return err
	}
	cfg, err := loadConfig(*dir)
	if err != nil {
		return err
	}
	logger := newLogger(env.stderr, config.LogConfig{Level: "warn", Format: cfg.Log.Format})
	db, err := openStore(ctx, cfg, logger)
	if err != nil {
		return err
	}
	defer db.Close()
	rep, err := audit.Verify(ctx, db)
	if err != nil {
		return fmt.Errorf("walking the audit chain: %w", err)
	}
	if !rep.OK() {
		fmt.Fprintf(env.stdout, "audit chain BROKEN: %s\n", rep)
		return withExit(1, errSilent)
	}
	fmt.Fprintf(env.stdout, "audit chain OK: %d records, head seq %d, hash %s\n", rep.Verified, rep.Head.Seq, hex.EncodeToString(rep.Head.Hash))
	return nil
}
