package main

// Trusted lists (ETSI TS 119 612): `thiqa tsl check` validates one list as a
// relying party would; `thiqa tsl build` writes and signs this deployment's
// own list with the tsl-signer key on the token.

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/thiqa/thiqa/ca/hierarchy"
	"github.com/thiqa/thiqa/cmd/thiqa/internal/config"
	"github.com/thiqa/thiqa/policies"
	"github.com/thiqa/thiqa/tsl/build"
	"github.com/thiqa/thiqa/verify"
	"github.com/thiqa/thiqa/verify/report"
	"github.com/thiqa/thiqa/verify/tsl"
)

// runTSL dispatches `thiqa tsl check|build`.
func runTSL(ctx context.Context, env *cliEnv, args []string) error {
	if len(args) > 0 {
		switch args[0] {
		case "check":
			return tslCheck(ctx, env, args[1:])
		case "build":
			return tslBuild(ctx, env, args[1:])
		}
	}
	return subcommandUsage(env, "tsl", `usage:
  thiqa tsl check FILE|URL [--signer PEM]... [--json] [--at RFC3339] [--timeout D]
  thiqa tsl build --data DIR [--out FILE] [--sequence N] [--next-update 180d] [--tsl-version 5|6]`, args)
}

// onePositional parses flags around exactly one positional argument; bad
// flags and a missing argument exit 3 (could not run).
func onePositional(fs *flag.FlagSet, args []string, what string) (string, error) {
	pos, err := positionals(fs, args)
	if err != nil {
		return "", err
	}
	if len(pos) != 1 {
		return "", cannotRun("name exactly one %s", what)
	}
	return pos[0], nil
}

func tslCheck(ctx context.Context, env *cliEnv, args []string) error {
	fs := newFlags("tsl check", env)
	var signers stringList
	fs.Var(&signers, "signer", "PEM file of the certificate(s) allowed to sign the list (repeatable)")
	asJSON := fs.Bool("json", false, "print JSON")
	at := fs.String("at", "", "validate at this time (RFC 3339) instead of now")
	timeout := fs.Duration("timeout", 30*time.Second, "bound of fetching a URL")
	loc, err := onePositional(fs, args, "trusted list: thiqa tsl check FILE|URL [--signer PEM]")
	if err != nil {
		return err
	}
	opts := tsl.CheckOptions{}
	if *at != "" {
		if opts.At, err = time.Parse(time.RFC3339, *at); err != nil {
			return cannotRun("--at: want an RFC 3339 time, got %q", *at)
		}
	}
	if opts.Signers, err = verify.ReadPEMFiles(signers); err != nil {
		return cannotRun("--signer: %w", err)
	}
	raw, err := tsl.ReadList(ctx, loc, *timeout)
	if err != nil {
		return cannotRun("%w", err)
	}
	res := tsl.Check(raw, opts)
	out := tsl.Summarize(loc, res)
	if *asJSON {
		err = out.WriteJSON(env.stdout)
	} else {
		err = out.WriteText(env.stdout)
	}
	if err != nil {
		return cannotRun("writing the result: %w", err)
	}
	if code := (&report.Report{Indication: res.Indication}).ExitCode(); code != 0 {
		return withExit(code, errSilent)
	}
	return nil
}

// parseDays reads "180d" or a Go duration.
func parseDays(s string) (time.Duration, error) {
	if d, ok := strings.CutSuffix(s, "d"); ok {
		n, err := strconv.Atoi(d)
		if err != nil || n <= 0 || n > 3650 {
			return 0, fmt.Errorf("want a number of days such as 180d, got %q", s)
		}
		return time.Duration(n) * 24 * time.Hour, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil || d <= 0 {
		return 0, fmt.Errorf("want 180d or a Go duration, got %q", s)
	}
	return d, nil
}

func tslBuild(ctx context.Context, env *cliEnv, args []string) error {
	fs := newFlags("tsl build", env)
	dir := fs.String("data", "", "data folder (required)")
	out := fs.String("out", "", "where to write the list (default: the configuration's tsl.file, served at GET /tsl.xml)")
	seq := fs.Int("sequence", 0, "TSLSequenceNumber (default: one more than the list at --out or any the audit log records for it, else 1)")
	next := fs.String("next-update", "180d", "nextUpdate after the issue date (TS 119 612: at most 6 months)")
	version := fs.Int("tsl-version", 6, "TSL version to write: 5 or 6")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	nextUpdate, err := parseDays(*next)
	if err != nil {
		return withExit(2, fmt.Errorf("--next-update: %w", err))
	}
	cfg, err := loadConfig(*dir)
	if err != nil {
		return err
	}
	tc := cfg.ResolvedTSL()
	if *out == "" {
		*out = tc.File
	}
	p, closeAll, err := openOperatorPlatform(ctx, env, cfg)
	if err != nil {
		return err
	}
	defer closeAll()
	if *seq, err = build.Sequence(ctx, *out, *seq, p.db); err != nil {
		return err
	}
	key, cert, err := tslSigner(ctx, p)
	if err != nil {
		return err
	}
	d, err := listedDeployment(cfg)
	if err != nil {
		return err
	}
	now := time.Now().UTC().Truncate(time.Second)
	o := tc.ListOptions(d, cfg.PublicBaseURL, now, nextUpdate)
	o.Version, o.Sequence, o.Signer, o.Certificate = *version, *seq, key, cert
	if err := build.Write(ctx, o, *out, p.audit, operatorName(), key.URI()); err != nil {
		return err
	}
	fmt.Fprintf(env.stdout, "trusted list %s: territory %s, sequence %d, %d services, next update %s\nsigned by %s (certificate %s)\n",
		*out, o.Territory, *seq, len(o.Services), o.NextUpdate.Format(time.RFC3339), key.URI(), tc.SignerCertificate)
	return nil
}

// listedDeployment describes this deployment for its own list
// (build.DeploymentServices) from the CA certificates in the data folder.
func listedDeployment(cfg *config.Config) (build.Deployment, error) {
	if !cfg.CA.Enabled() {
		return build.Deployment{}, errors.New("this data folder runs no CA: there is nothing to list")
	}
	profiles, err := policies.DefaultProfiles(cfg.CA.Profiles)
	if err != nil {
		return build.Deployment{}, err
	}
	root, err := verify.ReadPEMFile(caCertPath(cfg, cfg.CA.Root.Name))
	if err != nil {
		return build.Deployment{}, fmt.Errorf("root CA certificate (run `thiqa init --data %s`): %w", cfg.Dir(), err)
	}
	d := build.Deployment{Root: root[0], Profiles: profiles}
	if cfg.TSA.Enabled() {
		d.TSACA = cfg.TSA.CAOrDefault()
	}
	for _, is := range cfg.CA.Issuers {
		gens, err := hierarchy.Generations(cfg.Resolve(cfg.CA.CertDir), is.Name) // each key rolled over to is a service of its own
		if err != nil {
			return build.Deployment{}, fmt.Errorf("CA %s: %w", is.Name, err)
		}
		d.Issuers = append(d.Issuers, build.IssuingCA{Name: is.Name, Generations: gens})
	}
	return d, nil
}

// loadTrustedLists loads the lists named on the command line (each checked
// against every --tsl-signer) and in the configuration
// (verify.LoadTrustedLists).
func loadTrustedLists(ctx context.Context, cfg *config.Config, files, signerFiles []string, offline bool, timeout time.Duration) (verify.TrustedLists, []string, error) {
	opts := verify.TrustedListOptions{Files: files, SignerFiles: signerFiles, Offline: offline, Timeout: timeout}
	if cfg == nil {
		return verify.LoadTrustedLists(ctx, nil, nil, opts)
	}
	return verify.LoadTrustedLists(ctx, &cfg.Verify, cfg.Resolve, opts)
}
