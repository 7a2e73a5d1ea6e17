package config

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/thiqa/thiqa/hsm"
	"github.com/thiqa/thiqa/internal/atomicfile"
)

// AdoptToken names the offline token holding the copy of a root key that
// `thiqa ca root adopt` takes into a ceremony folder.
type AdoptToken struct {
	// Module is its PKCS#11 module, Label its token label, PINFile the
	// file holding its user PIN.
	Module, Label, PINFile string
	// SoftTokens is, for SoftHSM only, the copy of the deployment's token
	// folder: the ceremony folder gets a softhsm2.conf naming it.
	SoftTokens string
}

// WriteAdoptCeremony writes the ceremony folder dir's ceremony.yaml naming
// the offline token t, the root's key on it (the label findKey returns,
// given the configuration with the folder's SoftHSM prepared) and the
// deployment's public base URL. A token without the root's key (an error
// from findKey) is refused and leaves nothing behind; a ceremony.yaml
// already there (a run again) must name the same token, and is returned.
// ErrOtherToken refuses to adopt a root into a ceremony folder whose
// ceremony.yaml names another token than the one given.
var ErrOtherToken = errors.New("names another token")

func WriteAdoptCeremony(ctx context.Context, dir string, t AdoptToken, base string,
	findKey func(ctx context.Context, cfg *Ceremony) (string, error)) (_ *Ceremony, err error) {
	pin, err := filepath.Abs(t.PINFile)
	if err != nil {
		return nil, err
	}
	if _, err := os.Stat(pin); err != nil {
		return nil, fmt.Errorf("--pin-file: %w", err)
	}
	cfg := DefaultCeremony(dir)
	cfg.HSM = hsm.TokenConfig{Module: t.Module, TokenLabel: t.Label, PINFile: pin}
	if t.SoftTokens != "" {
		tokens, err := filepath.Abs(t.SoftTokens)
		if err != nil {
			return nil, err
		}
		if fi, err := os.Stat(tokens); err != nil || !fi.IsDir() {
			return nil, fmt.Errorf("--softhsm-tokens %s: not a token folder (%v)", tokens, err)
		}
		cfg.HSM.SoftHSM = &hsm.SoftHSMConfig{Conf: "softhsm2.conf", TokenDir: tokens, SOPINFile: "secrets/so.pin"}
	}
	cfg.PublicBaseURL = base
	if old, err := LoadCeremony(dir); err == nil {
		if old.HSM.Module != cfg.HSM.Module || old.HSM.TokenLabel != cfg.HSM.TokenLabel {
			return nil, fmt.Errorf("%s %w (%s, %s) than --module and --token-label: nothing was adopted", CeremonyPath(dir), ErrOtherToken, old.HSM.Module, old.HSM.TokenLabel)
		}
		return old, nil
	} else if !errors.Is(err, os.ErrNotExist) {
		return nil, err
	}
	if err := cfg.HSM.CheckModule(); err != nil {
		return nil, err
	}
	created := atomicfile.NewCreated(dir)
	defer func() {
		if err != nil {
			created.Undo()
		}
	}()
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("creating the ceremony folder: %w", err)
	}
	made, err := cfg.HSM.PrepareSoftHSM(cfg.Resolve, "thiqa ca root adopt")
	created.Add(made...)
	if err != nil {
		return nil, err
	}
	key, err := findKey(ctx, cfg)
	if err != nil {
		return nil, err
	}
	cfg.RootKey = hsm.URI{Token: t.Label, Object: key}.String()
	out, err := cfg.Marshal()
	if err != nil {
		return nil, err
	}
	if err := atomicfile.WriteNew(CeremonyPath(dir), out, 0o600); err != nil {
		return nil, fmt.Errorf("writing %s: %w", CeremonyPath(dir), err)
	}
	return cfg, nil
}
