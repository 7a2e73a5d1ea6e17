package main

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"path/filepath"

	"github.com/thiqa/thiqa/backup"
	"github.com/thiqa/thiqa/cmd/thiqa/internal/config"
	"github.com/thiqa/thiqa/hsm"
	"github.com/thiqa/thiqa/internal/buildinfo"
	"github.com/thiqa/thiqa/store"
	"github.com/thiqa/thiqa/verify/tsl"
)

// runBackup makes an online, consistent backup of a data folder and its
// store while `thiqa serve` runs (package backup): the folder's files
// (configuration, CA, TSA, OCSP responder and trusted-list files, audit
// checkpoints and their public key, the OIDC pairwise secret), then the
// database (SQLite's online backup API, or pg_dump), with a manifest signed
// by the audit checkpoint key. The token's keys and the PIN files are never
// in it: the HSM's own backup procedure keeps them (docs/operations.md).
func runBackup(ctx context.Context, env *cliEnv, args []string) error {
	fs := newFlags("backup", env)
	dir := fs.String("data", "", "data folder to back up (required)")
	out := fs.String("out", "", "archive to write, e.g. /backup/thiqa-$(date +%F).tar.gz (required; must not exist)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *dir == "" || *out == "" {
		return withExit(2, errors.New("usage: thiqa backup --data DIR --out FILE"))
	}
	// Absolute and with its links followed, so that every path the
	// configuration resolves compares with the paths the walk of the folder
	// finds, and the walk enters a --data that is a link to the folder
	// (a walk does not follow a link, and would copy nothing).
	absData, err := filepath.Abs(*dir)
	if err != nil {
		return fmt.Errorf("data folder: %w", err)
	}
	if absData, err = filepath.EvalSymlinks(absData); err != nil {
		return fmt.Errorf("data folder: %w", err)
	}
	cfg, err := loadConfig(absData)
	if err != nil {
		return err
	}
	absOut, err := filepath.Abs(*out)
	if err != nil {
		return fmt.Errorf("--out: %w", err)
	}
	if err := backup.CheckOut(absData, absOut); err != nil {
		return withExit(2, err)
	}
	if !cfg.CA.Enabled() {
		return errors.New("this data folder runs no CA: a backup is identified by its root CA and cannot be made")
	}
	ident, err := readFolderIdentity(cfg)
	if err != nil {
		return err
	}
	p, closeAll, err := openOperatorPlatform(ctx, env, cfg)
	if err != nil {
		return err
	}
	defer closeAll()
	key, err := checkpointKey(ctx, p)
	if err != nil {
		return err
	}
	dsn, err := cfg.StoreDSN()
	if err != nil {
		return err
	}
	files, dirs := backupLayout(cfg).Exclusions()
	a := cfg.ResolvedAudit()
	b := buildinfo.Read(version, commit, buildDate)
	m, err := backup.Create(ctx, backup.Options{
		Data: absData, Out: absOut, ExcludeFiles: files, ExcludeDirs: dirs, CheckpointFile: a.CheckpointFile,
		Named:  backupNamed(cfg),
		Driver: cfg.Store.Driver, Database: backupDB{DB: p.db, dsn: dsn}, Signer: key, Audit: p.audit, Actor: operatorName(),
		Deployment: backup.Deployment{RootSHA256: ident.RootSHA256, RootSubject: ident.Root.Subject.String()},
		Token:      cfg.HSM.TokenLabel, Build: backup.Build{Version: b.Version, Commit: b.Commit, BuildDate: b.BuildDate},
	})
	if err != nil {
		return err
	}
	m.Report(env.stdout, absOut)
	return nil
}

// backupNamed is what the configuration names that a backup must hold
// (setting → path): the folders and files Thiqa writes (this deployment's
// trusted list and its signer's certificate included), and every file the
// operator provides (the TLS certificate and key, JWKS files, client CAs,
// trust anchors, the notification secret, fonts; config.ProvidedFiles).
// Those outside the data folder are listed in the manifest as left out,
// for the host's own backup. The token's files (the PKCS#11 module, a
// vendor HSM's PIN file) are the HSM's procedure's, and not named.
func backupNamed(cfg *config.Config) map[string]string {
	a, tl := cfg.ResolvedAudit(), cfg.ResolvedTSL()
	named := map[string]string{
		"audit.checkpointFile": a.CheckpointFile, "audit.checkpointPublicKey": a.CheckpointPublicKey,
		"ca.certDir": cfg.Resolve(cfg.CA.CertDir), "tsa.certDir": cfg.Resolve(cfg.TSA.CertDir),
		"identity.pairwiseSecretFile": cfg.Resolve(cfg.Identity.PairwiseSecretFile),
		// thiqa tsl build writes them; relying parties configure the signer's certificate
		"tsl.file": tl.File, "tsl.signerCertificate": tl.SignerCertificate,
	}
	for _, f := range cfg.ProvidedFiles() {
		if !f.HSM {
			named[f.Key] = f.Path
		}
	}
	return named
}

// backupDB is the store as a backup copies it (backup.Database).
type backupDB struct {
	*store.DB
	dsn string
}

// DumpPostgres writes a pg_dump of the configured database.
func (d backupDB) DumpPostgres(ctx context.Context, w io.Writer) error {
	return store.DumpPostgres(ctx, d.dsn, w)
}

// checkpointKey finds the audit checkpoint key on the token: it signs the
// backup manifest.
func checkpointKey(ctx context.Context, p *platform) (*hsm.Signer, error) {
	a := p.cfg.ResolvedAudit()
	label, err := p.cfg.HSM.KeyLabel(a.CheckpointKey)
	if err != nil {
		return nil, fmt.Errorf("audit.checkpointKey: %w", err)
	}
	k, err := p.token.FindKey(ctx, label)
	if err != nil {
		return nil, fmt.Errorf("audit checkpoint key %s (it signs backup manifests; run thiqa init to create it): %w", a.CheckpointKey, err)
	}
	return k, nil
}

// backupLayout is where the data folder keeps what a backup leaves out
// and a restore expects back from the HSM's backup (backup.Layout), as
// absolute paths.
func backupLayout(cfg *config.Config) backup.Layout {
	resolve := func(p string) string {
		if p == "" {
			return ""
		}
		return cfg.Resolve(p)
	}
	l := backup.Layout{TrustedListCache: cfg.Resolve(cmp.Or(cfg.Verify.TrustedListCache, tsl.DefaultCacheDir)), PINFile: resolve(cfg.HSM.PINFile)}
	if s := cfg.HSM.SoftHSM; s != nil {
		l.SoftHSM = &backup.SoftHSMFiles{TokenDir: resolve(s.TokenDir), Conf: resolve(s.Conf), SOPINFile: resolve(s.SOPINFile)}
	}
	if cfg.Store.Driver == store.DriverSQLite {
		l.SQLite, _ = cfg.StoreDSN() // "" when it cannot be read
	}
	return l
}
