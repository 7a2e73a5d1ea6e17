package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/thiqa/thiqa/backup"
	"github.com/thiqa/thiqa/ca/crl"
	"github.com/thiqa/thiqa/ca/hierarchy"
	"github.com/thiqa/thiqa/cmd/thiqa/internal/config"
	"github.com/thiqa/thiqa/hsm/keyring"
)

// caRootRetireOnline is `thiqa ca root retire-online`: on the online
// side, after `thiqa ca root adopt` took the root into a ceremony folder,
// it switches the data folder to an offline root and destroys the root key
// on the online token (hierarchy.RetireOnlineRoot), given the root CRL the
// ceremony signed after adopting it as the proof that the offline copy of
// the key works.
func caRootRetireOnline(ctx context.Context, env *cliEnv, args []string) error {
	fs := newFlags("ca root retire-online", env)
	dir := fs.String("data", "", "data folder (required)")
	crlFile := fs.String("crl", "", "the root CRL the ceremony signed after `thiqa ca root adopt` (thiqa ca crl --ceremony C --out root.crl): the proof that the offline copy of the root key signs (required)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *dir == "" || *crlFile == "" {
		return withExit(2, errors.New("--data and --crl are required: the root CRL the ceremony signed is the proof that the offline copy of the root key works; without it the online key is not destroyed"))
	}
	cfg, err := loadConfig(*dir)
	if err != nil {
		return err
	}
	// A running thiqa serve holds the folder (a shared lock): it signs with
	// the root key this destroys and runs on the configuration this
	// rewrites. The docs stop every server first; this refuses the local
	// one. The folder is checked first (loadConfig), so that a folder that
	// is not there is not taken for one a server holds.
	release, err := backup.LockFolder(cfg.Dir(), true)
	if errors.Is(err, backup.ErrFolderInUse) {
		return fmt.Errorf("ca root retire-online needs every thiqa serve of the deployment stopped (nothing was changed): %w", err)
	}
	if err != nil {
		return err
	}
	defer release()
	if !cfg.CA.Enabled() {
		return errors.New("this data folder runs no CA (ca section of thiqa.yaml)")
	}
	root, err := caCertificate(cfg, cfg.CA.Root.Name)
	if err != nil {
		return fmt.Errorf("the root certificate: %w", err)
	}
	raw, err := os.ReadFile(*crlFile)
	if err != nil {
		return fmt.Errorf("reading --crl: %w", err)
	}
	now := time.Now()
	proof, err := crl.CheckImported(cfg.CA.Root.Name, raw, root, now)
	if err != nil {
		return crl.Refused(*crlFile, err)
	}
	p, closePlatform, err := openHeldPlatform(ctx, env, cfg)
	if err != nil {
		return err
	}
	defer closePlatform()
	err = hierarchy.RetireOnlineRoot(ctx, hierarchy.RetireOnline{
		RootName: cfg.CA.Root.Name, Root: root, Offline: cfg.CA.Root.Offline, Dir: cfg.Dir(), ConfigPath: config.Path(cfg.Dir()),
		Proof: proof, Source: *crlFile, Actor: operatorName(), Now: now,
		Token: keyring.CAToken{Token: p.token}, Numbers: p.db.Revocations(), CRLs: p.db.ImportedCRLs(), Audit: p.audit,
		SetOffline: func() (bool, error) { return config.SetRootOffline(cfg.Dir()) },
	}, env.stdout)
	if err != nil {
		return err
	}
	// The proof is imported as by ca crl import, which says when it
	// revokes an installed issuing CA. The warning is of the root CRL the
	// servers publish: the proof, or a newer one imported before it (then
	// the proof is not imported and what it revokes is not published).
	served := proof.DER
	if c, err := p.db.ImportedCRLs().ImportedCRL(ctx, cfg.CA.Root.Name); err == nil {
		served = c.DER
	}
	warnRevokedIssuingCAs(env.stderr, cfg, served)
	return nil
}
