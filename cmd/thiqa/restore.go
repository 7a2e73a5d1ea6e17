package main

import (
	"context"
	"crypto"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"

	"github.com/thiqa/thiqa/backup"
	"github.com/thiqa/thiqa/cmd/thiqa/internal/config"
	"github.com/thiqa/thiqa/hsm"
	"github.com/thiqa/thiqa/internal/audit"
	"github.com/thiqa/thiqa/store"
)

// runRestore restores a backup into a fresh data folder with the same
// token (package backup: the checks, the order, the serial floor).
func runRestore(ctx context.Context, env *cliEnv, args []string) error {
	fs := newFlags("restore", env)
	in := fs.String("in", "", "backup archive written by thiqa backup (required)")
	dir := fs.String("data", "", "data folder to restore into: new, or holding only the token, PIN files and thiqa.yaml (required)")
	cps := fs.String("checkpoints", "", "a newer copy of the audit checkpoint file (e.g. the one kept off the host), used instead of the backup's")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *in == "" || *dir == "" {
		return withExit(2, errors.New("usage: thiqa restore --in FILE --data DIR [--checkpoints FILE]"))
	}
	absData, err := filepath.Abs(*dir)
	if err != nil {
		return fmt.Errorf("data folder: %w", err)
	}
	r, err := backup.Restore(ctx, backup.RestoreOptions{Archive: *in, Data: absData, Checkpoints: *cps, ConfigFile: config.FileName,
		Host: &restoreHost{env: env, data: absData}, Actor: operatorName()})
	if err != nil {
		return err
	}
	r.Report(env.stdout)
	return nil
}

// restoreHost is this host as a restore sees it (backup.Host): the
// configuration, the token and the store.
type restoreHost struct {
	env    *cliEnv
	data   string
	cfg    *config.Config
	logger *slog.Logger
}

// Configure uses the folder's own thiqa.yaml when there is one (how this
// host reaches its HSM and database), else the backup's.
func (h *restoreHost) Configure(backupConfig string) (backup.Settings, error) {
	var set backup.Settings
	var err error
	if _, statErr := os.Stat(config.Path(h.data)); statErr == nil {
		set.OwnConfig = true
		if h.cfg, err = config.Load(h.data); err != nil {
			return set, fmt.Errorf("the folder's configuration: %w", err)
		}
	} else {
		raw, err := os.ReadFile(backupConfig)
		if err != nil {
			return set, fmt.Errorf("%w: the backup holds no %s", backup.ErrCorrupt, config.FileName)
		}
		if h.cfg, err = config.Parse(raw, h.data); err != nil {
			return set, fmt.Errorf("the backup's configuration: %w", err)
		}
	}
	cfg := h.cfg
	h.logger = newLogger(h.env.stderr, config.LogConfig{Level: "warn", Format: cfg.Log.Format})
	set.CA, set.Token, set.Driver = cfg.CA.Enabled(), cfg.HSM.TokenLabel, cfg.Store.Driver
	if !set.CA {
		return set, nil
	}
	set.RootCertificate, set.RootCommonName = caCertPath(cfg, cfg.CA.Root.Name), cfg.CA.Root.CommonName
	// An offline root (thiqa init --root-cert) has no key on this token.
	if set.RootOffline = cfg.CA.Root.Offline; !set.RootOffline {
		if set.RootKeyLabel, err = cfg.HSM.KeyLabel(cfg.CA.Root.Key); err != nil {
			return set, err
		}
	}
	if set.Driver == store.DriverSQLite {
		if set.SQLiteFile, err = cfg.StoreDSN(); err != nil {
			return set, err
		}
	}
	set.CheckpointFile = cfg.ResolvedAudit().CheckpointFile
	set.CRLIssuers = []string{cfg.CA.Root.Name}
	for _, is := range cfg.CA.Issuers {
		set.CRLIssuers = append(set.CRLIssuers, is.Name)
	}
	set.Layout = backupLayout(cfg)
	if s := cfg.HSM.SoftHSM; s != nil {
		set.SoftHSMConf = hsm.SoftHSMConf(cfg.Resolve(s.TokenDir), "thiqa restore")
	}
	return set, nil
}

// OpenToken opens the configured token, through the SoftHSM
// configuration softHSMConf when there is one.
func (h *restoreHost) OpenToken(ctx context.Context, softHSMConf string) (backup.Keys, error) {
	if softHSMConf != "" {
		if err := os.Setenv("SOFTHSM2_CONF", softHSMConf); err != nil {
			return nil, fmt.Errorf("setting SOFTHSM2_CONF: %w", err)
		}
	}
	tok, err := openToken(ctx, h.cfg, h.logger, nil)
	if err != nil {
		return nil, fmt.Errorf("%w: a restore needs the deployment's token: put it back first (SoftHSM: the token folder and the PIN files, from the HSM backup, into %s)", err, h.data)
	}
	return restoreKeys{p: &platform{cfg: h.cfg, token: tok}}, nil
}

// restoreKeys are the token's keys as a restore checks them (backup.Keys).
type restoreKeys struct{ p *platform }

func (k restoreKeys) PublicKey(ctx context.Context, label string) (crypto.PublicKey, error) {
	key, err := k.p.token.FindKey(ctx, label)
	if errors.Is(err, hsm.ErrKeyNotFound) {
		return nil, fmt.Errorf("%w: %w", backup.ErrKeyNotFound, err)
	}
	if err != nil {
		return nil, err
	}
	return key.Public(), nil
}

func (k restoreKeys) CheckpointKey(ctx context.Context) (crypto.Signer, error) {
	return checkpointKey(ctx, k.p)
}

func (k restoreKeys) Close() error { return k.p.token.Close() }

func (h *restoreHost) InspectPostgres(ctx context.Context) (backup.PostgresState, error) {
	dsn, err := h.cfg.StoreDSN()
	if err != nil {
		return backup.PostgresState{}, err
	}
	st, err := store.InspectPostgres(ctx, dsn)
	return st.Backup(), err
}

func (h *restoreHost) LoadPostgres(ctx context.Context, dump io.Reader) error {
	dsn, err := h.cfg.StoreDSN()
	if err != nil {
		return err
	}
	return store.RestorePostgres(ctx, dsn, dump)
}

// OpenStore opens the restored store and the audit log on it.
func (h *restoreHost) OpenStore(ctx context.Context, sqliteCopy string) (backup.RestoredStore, error) {
	dsn, err := h.cfg.StoreDSN()
	if err != nil {
		return nil, err
	}
	if sqliteCopy != "" {
		dsn = sqliteCopy
	}
	db, err := store.Open(ctx, h.cfg.Store.Config(dsn), h.logger)
	if err != nil {
		return nil, err
	}
	return store.NewRestored(db, audit.New(db, h.logger, nil, audit.Options{})), nil
}
