package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/thiqa/thiqa/ca"
	"github.com/thiqa/thiqa/ca/revocation"
	"github.com/thiqa/thiqa/cmd/thiqa/internal/config"
	"github.com/thiqa/thiqa/hsm"
	"github.com/thiqa/thiqa/internal/audit"
	"github.com/thiqa/thiqa/internal/auth"
	"github.com/thiqa/thiqa/internal/outage"
	"github.com/thiqa/thiqa/store"
)

// newFlags returns a flag set that reports errors instead of exiting.
func newFlags(name string, env *cliEnv) *flag.FlagSet {
	fs := flag.NewFlagSet("thiqa "+name, flag.ContinueOnError)
	fs.SetOutput(env.stderr)
	return fs
}

// subcommandUsage answers `thiqa VERB` whose subcommand is missing, unknown
// or a request for help: it prints usage (one form per line) to stderr,
// after naming an unknown subcommand, and exits 0 for -h, --help or help,
// else 2.
func subcommandUsage(env *cliEnv, verb, usage string, args []string) error {
	head := args[:min(len(args), 2)]
	help := slices.ContainsFunc(head, func(a string) bool { return isHelpFlag(a) || a == "help" })
	if !help && len(args) > 0 {
		fmt.Fprintf(env.stderr, "thiqa %s: unknown subcommand %q\n", verb, strings.Join(head, " "))
	}
	fmt.Fprintln(env.stderr, usage)
	if help {
		return withExit(0, errSilent)
	}
	return withExit(2, errSilent)
}

// parseFlags parses args; -h is a clean exit and a bad flag exit code 2.
func parseFlags(fs *flag.FlagSet, args []string) error {
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return withExit(0, errSilent)
		}
		return withExit(2, errSilent)
	}
	if fs.NArg() > 0 {
		return withExit(2, fmt.Errorf("unexpected argument %q", fs.Arg(0)))
	}
	return nil
}

// newLogger builds the structured logger the configuration asks for, which
// logs an outage's repeated warnings and errors once a minute.
func newLogger(w io.Writer, lc config.LogConfig) *slog.Logger {
	var level slog.Level
	switch lc.Level {
	case "debug":
		level = slog.LevelDebug
	case "warn":
		level = slog.LevelWarn
	case "error":
		level = slog.LevelError
	default:
		level = slog.LevelInfo
	}
	opts := &slog.HandlerOptions{Level: level}
	var h slog.Handler = slog.NewJSONHandler(w, opts)
	if lc.Format == "text" {
		h = slog.NewTextHandler(w, opts)
	}
	// An outage (database down, disk full) fails every request, and each
	// would log its error: one line per message and minute says it.
	return slog.New(outage.NewQuietHandler(h, outageLogEvery))
}

// outageLogEvery is how often a warning or error caused by an outage is
// logged again while it lasts (outage.QuietHandler).
const outageLogEvery = time.Minute

// loadConfig reads DIR/thiqa.yaml and points SoftHSM at the data folder's
// token when Thiqa manages one.
func loadConfig(dir string) (*config.Config, error) {
	if dir == "" {
		return nil, withExit(2, errors.New("--data DIR is required"))
	}
	if _, err := os.Stat(config.Path(dir)); err != nil {
		return nil, fmt.Errorf("data folder %s is not initialised (run `thiqa init --data %s`): %w", dir, dir, err)
	}
	cfg, err := config.Load(dir)
	if err != nil {
		return nil, err
	}
	if err := cfg.HSM.UseSoftHSMConf(cfg.Resolve); err != nil {
		return nil, err
	}
	return cfg, nil
}

// openToken opens the configured PKCS#11 token and logs in.
func openToken(ctx context.Context, cfg *config.Config, logger *slog.Logger, reg prometheus.Registerer) (*hsm.Token, error) {
	return cfg.HSM.Open(ctx, tokenOptions(cfg, logger, reg))
}

// tokenOptions are how the data folder's token is opened.
func tokenOptions(cfg *config.Config, logger *slog.Logger, reg prometheus.Registerer) hsm.OpenOptions {
	return hsm.OpenOptions{Resolve: cfg.Resolve, PIN: cfg.PIN, KeyMetricLabel: keyMetricLabel(cfg), Logger: logger, Registerer: reg}
}

// openStore opens the configured database and applies migrations.
func openStore(ctx context.Context, cfg *config.Config, logger *slog.Logger) (*store.DB, error) {
	dsn, err := cfg.StoreDSN()
	if err != nil {
		return nil, err
	}
	db, err := store.Open(ctx, cfg.Store.Config(dsn), logger)
	if err != nil {
		return nil, fmt.Errorf("opening %s store: %w", cfg.Store.Driver, err)
	}
	return db, nil
}

// newAuthenticator builds API authentication from the configuration. Every
// client certificate, on every path, is checked against this deployment's
// records by status; every refusal is recorded in log. delegated are the
// deployment's own authorization servers (cscDelegatedIssuers).
func newAuthenticator(cfg *config.Config, logger *slog.Logger, reg prometheus.Registerer, status *revocation.Checker, log *audit.Log,
	delegated []auth.DelegatedIssuer) (*auth.Authenticator, error) {
	a, err := auth.New(cfg.ResolvedAuth(), auth.Options{
		Logger: logger, Registerer: reg, Audit: log, Delegated: delegated,
		CheckCertificate: status.CheckClientChain,
		Country:          cfg.CA.Country(),
	})
	if err != nil {
		return nil, fmt.Errorf("authentication: %w", err)
	}
	return a, nil
}

// openOperatorPlatform opens what an operator command needs from the data
// folder (the token, the store and the audit log, logging warnings only)
// under the folder's shared lock (lockForOperator), and returns a function
// closing them in reverse order and releasing the lock.
func openOperatorPlatform(ctx context.Context, env *cliEnv, cfg *config.Config) (*platform, func(), error) {
	return underOperatorLock(cfg, func() (*platform, func(), error) { return openHeldPlatform(ctx, env, cfg) })
}

// openHeldPlatform is openOperatorPlatform for a command that holds the
// data folder's exclusive lock already (thiqa ca root retire-online): a
// shared lock beside it, even in the same process, would be refused.
func openHeldPlatform(ctx context.Context, env *cliEnv, cfg *config.Config) (*platform, func(), error) {
	logger := newLogger(env.stderr, config.LogConfig{Level: "warn", Format: cfg.Log.Format})
	return openPlatform(ctx, cfg, logger, nil, openToken)
}

// openPlatform opens the token (with open), the store and the audit log
// of cfg, and returns a function closing them in reverse order.
func openPlatform(ctx context.Context, cfg *config.Config, logger *slog.Logger, reg prometheus.Registerer,
	open func(context.Context, *config.Config, *slog.Logger, prometheus.Registerer) (*hsm.Token, error)) (*platform, func(), error) {
	tok, err := open(ctx, cfg, logger, reg)
	if err != nil {
		return nil, nil, err
	}
	db, err := openStore(ctx, cfg, logger)
	if err != nil {
		tok.Close()
		return nil, nil, err
	}
	log := audit.New(db, logger, reg, audit.Options{})
	closeAll := func() {
		log.Close()
		db.Close()
		tok.Close()
	}
	return &platform{cfg: cfg, logger: logger, reg: reg, token: tok, db: db, audit: log, revokedCAs: new(ca.RevokedIssuers)}, closeAll, nil
}
