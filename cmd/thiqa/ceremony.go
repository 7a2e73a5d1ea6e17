package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/thiqa/thiqa/ca/ceremony"
	"github.com/thiqa/thiqa/cmd/thiqa/internal/config"
	"github.com/thiqa/thiqa/hsm"
	"github.com/thiqa/thiqa/hsm/keyring"
	"github.com/thiqa/thiqa/internal/atomicfile"
)

// The key ceremony's commands (ca root create, ca sign, ca crl) act on a
// ceremony folder through package ca/ceremony; this file opens the folder
// (its ceremony.yaml, written with the defaults by the first command) and
// its offline token.

// openCeremony opens the ceremony folder dir: its configuration (written
// with the defaults first when create is set and there is none), its log,
// verified, and the state the log records. create also makes the folder's
// SoftHSM token when it has none.
func openCeremony(ctx context.Context, dir string, create bool) (*ceremony.Folder, *config.Ceremony, error) {
	if dir == "" {
		return nil, nil, withExit(2, errors.New("--ceremony DIR is required"))
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, nil, fmt.Errorf("ceremony folder: %w", err)
	}
	if _, err := os.Stat(config.CeremonyPath(abs)); errors.Is(err, os.ErrNotExist) {
		if !create {
			return nil, nil, fmt.Errorf("%s is not a ceremony folder (no %s): create it with `thiqa ca root create --ceremony %s`", abs, config.CeremonyFileName, abs)
		}
		if err := os.MkdirAll(abs, 0o700); err != nil {
			return nil, nil, fmt.Errorf("creating the ceremony folder: %w", err)
		}
		raw, err := config.DefaultCeremony(abs).Marshal()
		if err != nil {
			return nil, nil, err
		}
		if err := atomicfile.WriteNew(config.CeremonyPath(abs), raw, 0o600); err != nil {
			return nil, nil, fmt.Errorf("writing %s: %w", config.CeremonyPath(abs), err)
		}
	}
	cfg, err := config.LoadCeremony(abs)
	if err != nil {
		return nil, nil, err
	}
	label, err := hsm.ObjectLabel("rootKey", cfg.RootKey, cfg.HSM.TokenLabel, "offline")
	if err != nil {
		return nil, nil, err
	}
	f, err := ceremony.Open(ctx, ceremony.Options{
		Dir: abs, PublicBaseURL: cfg.PublicBaseURL, RootKey: cfg.RootKey, RootKeyLabel: label, Actor: operatorName(),
		OpenToken: func(ctx context.Context) (ceremony.Token, error) { return openOfflineToken(ctx, cfg, create) },
	})
	return f, cfg, err
}

// openOfflineToken opens the offline token (one session, every signature
// verified); with create, a SoftHSM token the folder manages is made first
// when it does not exist yet.
func openOfflineToken(ctx context.Context, cfg *config.Ceremony, create bool) (ceremony.Token, error) {
	h := cfg.HSM
	h.PoolSize, h.VerifyAfterSign = 1, true
	if err := h.UseSoftHSMConf(cfg.Resolve); err != nil {
		return nil, err
	}
	tok, err := h.Open(ctx, hsm.OpenOptions{Role: "offline", Resolve: cfg.Resolve, PIN: cfg.PIN,
		Create: create, CreatedBy: "thiqa init", ReadSecret: config.ReadSecret})
	if err != nil {
		return nil, err
	}
	return keyring.CAToken{Token: tok}, nil
}

// verifyCeremony is `thiqa audit verify --ceremony DIR`: it walks the
// ceremony log and says what it records; a log that was edited is exit 1,
// naming the first bad entry.
func verifyCeremony(ctx context.Context, env *cliEnv, dir string) error {
	if _, err := os.Stat(config.CeremonyPath(dir)); err != nil {
		return fmt.Errorf("%s is not a ceremony folder: %w", dir, err)
	}
	if err := ceremony.Verify(ctx, dir, env.stdout); errors.Is(err, ceremony.ErrBroken) {
		return withExit(1, errSilent)
	} else if err != nil {
		return err
	}
	return nil
}
