package main

// The sequences the operator's verbs share: reading the data folder and
// opening what a verb needs from it, logging warnings only.

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"

	"github.com/thiqa/thiqa/backup"
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

// lockForOperator takes the data folder's shared lock for an operator verb
// that writes to its store (thiqa issue, revoke, enrol, seal, …), for as
// long as it runs: `thiqa serve` holds the same shared lock, so the verb
// still runs beside a server, while a restore, thiqa audit compact and
// thiqa ca root retire-online (the exclusive lock) refuse the folder
// while the verb runs, and the verb refuses it while they run.
func lockForOperator(cfg *config.Config) (func(), error) {
	release, err := backup.LockFolder(cfg.Dir(), false)
	if err != nil {
		return nil, fmt.Errorf("nothing was changed: %w", err)
	}
	return release, nil
}

// openOperatorStore opens the store and the audit log on it, without the
// token, under the data folder's shared lock (lockForOperator), and
// returns a function closing both and releasing the lock.
func openOperatorStore(ctx context.Context, env *cliEnv, cfg *config.Config) (*platform, func(), error) {
	return underOperatorLock(cfg, func() (*platform, func(), error) { return openHeldStore(ctx, env, cfg) })
}

// underOperatorLock takes the data folder's shared lock (lockForOperator),
// then opens what open opens, and returns a function closing it and then
// releasing the lock (at once when open fails).
func underOperatorLock(cfg *config.Config, open func() (*platform, func(), error)) (*platform, func(), error) {
	release, err := lockForOperator(cfg)
	if err != nil {
		return nil, nil, err
	}
	p, closeAll, err := open()
	if err != nil {
		release()
		return nil, nil, err
	}
	return p, func() { closeAll(); release() }, nil
}

// openHeldStore is openOperatorStore for a command that holds the data
// folder's exclusive lock already (thiqa audit compact).
func openHeldStore(ctx context.Context, env *cliEnv, cfg *config.Config) (*platform, func(), error) {
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
