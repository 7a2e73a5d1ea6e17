package main

import (
	"context"
	"errors"
	"fmt"

	"github.com/thiqa/thiqa/cmd/thiqa/internal/config"
	"github.com/thiqa/thiqa/internal/auth"
)

// runConfig prints the default configuration or checks a data folder's.
func runConfig(ctx context.Context, env *cliEnv, args []string) error {
	if len(args) > 0 {
		switch args[0] {
		case "default":
			return runConfigDefault(ctx, env, args[1:])
		case "check":
			return runConfigCheck(ctx, env, args[1:])
		}
	}
	return subcommandUsage(env, "config", `usage:
  thiqa config default [--clock SOURCE]
  thiqa config check --data DIR`, args)
}

// runConfigDefault prints the configuration `thiqa init` writes into a new
// data folder, optionally with another TSA clock source (packages set the
// one production needs).
func runConfigDefault(_ context.Context, env *cliEnv, args []string) error {
	fs := newFlags("config default", env)
	clock := fs.String("clock", "", "TSA clock source: chrony, kernel, static or static-out-of-sync (default: static, development only)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	raw, err := config.DefaultText(*clock)
	if err != nil {
		return err
	}
	// Parse validates exactly what an operator would install.
	if _, err := config.Parse(raw, "/"); err != nil {
		return withExit(2, err)
	}
	_, err = env.stdout.Write(raw)
	return err
}

// runConfigCheck validates DATA/thiqa.yaml without starting anything, so an
// operator can check an edit before restarting the service: the settings,
// and the files serve would read (config.CheckFiles). In production it also
// warns about what is left of the development defaults
// (config.ProductionWarnings), and always when the deployment's country is
// not its CA certificate's C (countryMismatches).
func runConfigCheck(_ context.Context, env *cliEnv, args []string) error {
	fs := newFlags("config check", env)
	dir := fs.String("data", "", "data folder (required)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *dir == "" {
		return withExit(2, errors.New("--data DIR is required"))
	}
	cfg, err := config.Load(*dir)
	if err != nil {
		return err
	}
	// What serve refuses to start with, before anything is opened.
	if err := auth.RefuseDevelopmentIssuers(cfg.DevelopmentIssuers(), cfg.Production); err != nil {
		return fmt.Errorf("%s: %w", config.Path(*dir), err)
	}
	// What serve would fail on at its first read: every problem, one line each.
	if err := cfg.CheckFiles(); err != nil {
		errs := []error{err}
		if j, ok := err.(interface{ Unwrap() []error }); ok {
			errs = j.Unwrap()
		}
		for _, e := range errs {
			fmt.Fprintf(env.stderr, "thiqa config: %s: %v\n", config.Path(*dir), e)
		}
		return withExit(1, errSilent)
	}
	for _, w := range cfg.ProductionWarnings() {
		fmt.Fprintf(env.stderr, "thiqa config: %s: warning: %s\n", config.Path(*dir), w)
	}
	for _, m := range countryMismatches(cfg) {
		fmt.Fprintf(env.stderr, "thiqa config: %s: warning: %s\n", config.Path(*dir), m)
	}
	fmt.Fprintf(env.stdout, "%s: ok\n", config.Path(*dir))
	return nil
}
