package main

// The sequences the operator's verbs share: reading the data folder and
// opening what a verb needs from it, logging warnings only.

import (
	"context"
	"errors"
	"log/slog"
	"strings"

	"github.com/thiqa/thiqa/ca"
	"github.com/thiqa/thiqa/cmd/thiqa/internal/config"
	"github.com/thiqa/thiqa/internal/audit"
	"github.com/thiqa/thiqa/store"
)

// operatorLogger logs an operator verb's warnings only, in the configured
// format.
func operatorLogger(env *cliEnv, cfg *config.Config) *slog.Logger {
	return newLogger(env.stderr, config.LogConfig{Level: "warn", Format: cfg.Log.Format})
}

// openFolderStore reads the data folder dir and opens its store, for an
// operator command that needs neither the token nor the audit log's writer.
func openFolderStore(ctx context.Context, env *cliEnv, dir string) (*config.Config, *store.DB, error) {
	cfg, err := loadConfig(dir)
	if err != nil {
		return nil, nil, err
	}
	db, err := openStore(ctx, cfg, operatorLogger(env, cfg))
	return cfg, db, err
}

// openOperatorFolder reads the data folder dir, refuses it with refuse's
// error (when refuse is not nil), and opens its token, store and audit log
// (openOperatorPlatform).
func openOperatorFolder(ctx context.Context, env *cliEnv, dir string, refuse func(*config.Config) error) (*platform, func(), error) {
	cfg, err := loadConfig(dir)
	if err != nil {
		return nil, nil, err
	}
	if refuse != nil {
		if err := refuse(cfg); err != nil {
			return nil, nil, err
		}
	}
	return openOperatorPlatform(ctx, env, cfg)
}

// openOperatorStore opens the store and the audit log on it, without the
// token, and returns a function closing both.
func openOperatorStore(ctx context.Context, env *cliEnv, cfg *config.Config) (*platform, func(), error) {
	logger := operatorLogger(env, cfg)
	db, err := openStore(ctx, cfg, logger)
	if err != nil {
		return nil, nil, err
	}
	log := audit.New(db, logger, nil, audit.Options{})
	return &platform{cfg: cfg, logger: logger, db: db, audit: log, revokedCAs: new(ca.RevokedIssuers)}, func() { log.Close(); db.Close() }, nil
}

// needSigning refuses a data folder without the signing service.
func needSigning(cfg *config.Config) error {
	if !cfg.Signing.Enabled(cfg.CA) {
		return errors.New("this data folder has no signing service (ca section missing or signing.disabled)")
	}
	return nil
}

// stringList is a repeatable flag.
type stringList []string

func (s *stringList) String() string     { return strings.Join(*s, ",") }
func (s *stringList) Set(v string) error { *s = append(*s, v); return nil }
