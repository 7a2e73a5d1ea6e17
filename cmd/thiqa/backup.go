package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/thiqa/thiqa/cmd/thiqa/internal/config"
	"github.com/thiqa/thiqa/hsm"
	"github.com/thiqa/thiqa/internal/audit"
	"github.com/thiqa/thiqa/store"
)

// runBackup makes an online, consistent backup of a data folder and its
// store while `thiqa serve` runs: the folder's files (configuration, CA,
// TSA, OCSP responder and trusted-list files, audit checkpoints and their
// public key, the OIDC pairwise secret), then the database (SQLite's
// online backup API, or pg_dump), with a manifest signed by the audit
// checkpoint key. The token's keys and the PIN files are never in it: the
// HSM's own backup procedure keeps them (docs/operations.md).
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
	// Absolute, so that every path the configuration resolves compares
	// with the paths the walk of the folder finds.
	absData, err := filepath.Abs(*dir)
	if err != nil {
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
	if within(absData, absOut) {
		return withExit(2, fmt.Errorf("--out %s is inside the data folder: a backup belongs on another disk", absOut))
	}
	if _, err := os.Lstat(absOut); err == nil {
		return withExit(2, fmt.Errorf("%s exists: choose a new file name (nothing was overwritten)", absOut))
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

	staging, err := os.MkdirTemp(filepath.Dir(absOut), ".thiqa-backup-")
	if err != nil {
		return fmt.Errorf("creating a staging folder next to --out: %w", err)
	}
	defer os.RemoveAll(staging)

	host, _ := os.Hostname()
	b := currentBuild()
	m := &backupManifest{
		Format: backupFormat, Created: time.Now().UTC(), Host: host, Token: cfg.HSM.TokenLabel,
		Thiqa:      versionInfo{Version: b.Version, Commit: b.Commit, BuildDate: b.BuildDate},
		Deployment: manifestDeployment{RootSHA256: ident.id.RootSHA256, RootSubject: ident.root.Subject.String()},
		Store:      manifestStore{Driver: cfg.Store.Driver},
	}
	staged := map[string]string{}
	// Files first, the database last: every checkpoint copied then names
	// a record the database copy holds.
	if err := stageDataFiles(cfg, absData, staging, staged, m); err != nil {
		return err
	}
	head, err := p.db.AuditHead(ctx)
	if err != nil {
		return err
	}
	m.Audit = manifestAudit{Seq: head.Seq, Hash: hex.EncodeToString(head.Hash)}
	if err := stageDatabase(ctx, cfg, p.db, staging, staged, m); err != nil {
		return err
	}
	if err := fillManifestFiles(m, staged); err != nil {
		return err
	}
	raw, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return fmt.Errorf("encoding the manifest: %w", err)
	}
	sig, err := signManifest(key, raw)
	if err != nil {
		return err
	}
	if err := writeArchiveFile(absOut, raw, sig, m, staged); err != nil {
		return err
	}
	digest := manifestDigest(raw)
	if _, err := p.audit.Append(ctx, audit.Entry{Actor: operatorName(), Action: "data.backup", Object: absOut, Outcome: audit.OutcomeSuccess,
		Details: map[string]any{"manifestSHA256": hex.EncodeToString(digest), "auditSeq": head.Seq, "files": len(m.Files)}}); err != nil {
		return fmt.Errorf("the backup %s is complete, but its audit record failed: %w", absOut, err)
	}
	fmt.Fprintf(env.stdout, "backup %s\n  deployment  root CA SHA-256 %s\n  store       %s (%s), audit head at least seq %d\n  files       %d\n",
		absOut, m.Deployment.RootSHA256, m.Store.Driver, m.Store.Method, head.Seq, len(m.Files))
	for _, x := range m.Excluded {
		fmt.Fprintf(env.stdout, "  not in it   %s\n", x)
	}
	return nil
}

// checkpointKey finds the audit checkpoint key on the token: it signs the
// backup manifest.
func checkpointKey(ctx context.Context, p *platform) (*hsm.Signer, error) {
	a := p.cfg.ResolvedAudit()
	label, err := keyLabel(p.cfg, a.CheckpointKey)
	if err != nil {
		return nil, fmt.Errorf("audit.checkpointKey: %w", err)
	}
	k, err := p.token.FindKey(ctx, label)
	if err != nil {
		return nil, fmt.Errorf("audit checkpoint key %s (it signs backup manifests; run thiqa init to create it): %w", a.CheckpointKey, err)
	}
	return k, nil
}

// within reports whether p is dir or inside it.
func within(dir, p string) bool {
	rel, err := filepath.Rel(dir, p)
	return err == nil && rel != ".." && !strings.HasPrefix(rel, ".."+string(filepath.Separator))
}

// backupExclusions returns the paths (absolute) a backup leaves out of the
// data folder, with why, and the folders it does not descend into.
func backupExclusions(cfg *config.Config) (files map[string]string, dirs map[string]string) {
	files, dirs = map[string]string{}, map[string]string{}
	if s := cfg.HSM.SoftHSM; s != nil {
		dirs[cfg.Resolve(s.TokenDir)] = "the SoftHSM token (keys): back it up with the HSM's procedure"
		files[cfg.Resolve(s.Conf)] = "the SoftHSM configuration (thiqa restore writes it)"
		files[cfg.Resolve(s.SOPINFile)] = "the security officer PIN: kept with the token's backup"
	}
	if cfg.HSM.PINFile != "" {
		files[cfg.Resolve(cfg.HSM.PINFile)] = "the token's user PIN: kept with the token's backup"
	}
	if cfg.Store.Driver == store.DriverSQLite {
		if dsn, err := cfg.StoreDSN(); err == nil {
			for _, suffix := range []string{"", "-wal", "-shm", "-journal"} {
				files[dsn+suffix] = "the live database (copied through SQLite's backup API instead)"
			}
		}
	}
	cache := cfg.Verify.TrustedListCache
	if cache == "" {
		cache = config.DefaultTrustedListCache
	}
	dirs[cfg.Resolve(cache)] = "the trusted-list cache (fetched again)"
	return files, dirs
}

// stageDataFiles copies the data folder's files into staging/data/,
// except the exclusions; the checkpoint file under its writers' lock.
// Files the configuration names outside the folder are listed as
// excluded: they belong to the host's own backup.
func stageDataFiles(cfg *config.Config, absData, staging string, staged map[string]string, m *backupManifest) error {
	files, dirs := backupExclusions(cfg)
	noted := map[string]bool{}
	note := func(p, why string) {
		if !noted[p] {
			noted[p] = true
			m.Excluded = append(m.Excluded, p+": "+why)
		}
	}
	cpFile := cfg.ResolvedAudit().CheckpointFile
	err := filepath.WalkDir(absData, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if why, ok := dirs[p]; ok && d.IsDir() {
			note(p, why)
			return filepath.SkipDir
		}
		if d.IsDir() {
			return nil
		}
		if why, ok := files[p]; ok {
			if _, err := os.Stat(p); err == nil {
				note(p, why)
			}
			return nil
		}
		info, err := os.Stat(p) // follows a link (thiqa.yaml -> /etc/thiqa/thiqa.yaml)
		if err != nil {
			return fmt.Errorf("reading %s: %w", p, err)
		}
		if !info.Mode().IsRegular() {
			note(p, "not a regular file")
			return nil
		}
		rel, err := filepath.Rel(absData, p)
		if err != nil {
			return err
		}
		name := dataPrefix + filepath.ToSlash(rel)
		dst := filepath.Join(staging, filepath.FromSlash(name))
		if p == cpFile {
			err = copyCheckpointFile(p, dst)
		} else {
			err = copyFile(p, dst, info.Mode().Perm())
		}
		if err != nil {
			return err
		}
		staged[name] = dst
		return nil
	})
	if err != nil {
		return fmt.Errorf("copying the data folder: %w", err)
	}
	a := cfg.ResolvedAudit()
	for what, p := range map[string]string{
		"audit.checkpointFile": a.CheckpointFile, "audit.checkpointPublicKey": a.CheckpointPublicKey,
		"ca.certDir": cfg.Resolve(cfg.CA.CertDir), "tsa.certDir": cfg.Resolve(cfg.TSA.CertDir),
		"identity.pairwiseSecretFile": cfg.Resolve(cfg.Identity.PairwiseSecretFile),
	} {
		if p != "" && !within(absData, p) {
			note(p, what+" is outside the data folder: back it up with the host's files")
		}
	}
	slices.Sort(m.Excluded)
	return nil
}

// copyFile copies src to dst (created, with mode perm).
func copyFile(src, dst string, perm os.FileMode) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	return writeNew(dst, in, perm)
}

// writeNew creates dst (and its folder) with r's content and syncs it.
func writeNew(dst string, r io.Reader, perm os.FileMode) error {
	if err := os.MkdirAll(filepath.Dir(dst), 0o700); err != nil {
		return err
	}
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, perm)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, r); err != nil {
		out.Close()
		return fmt.Errorf("writing %s: %w", dst, err)
	}
	if err := out.Sync(); err != nil {
		out.Close()
		return fmt.Errorf("writing %s: %w", dst, err)
	}
	return out.Close()
}

// copyCheckpointFile copies the checkpoint file under a shared flock (the
// writers append under an exclusive one), keeping whole lines only.
func copyCheckpointFile(src, dst string) error {
	f, err := os.Open(src)
	if err != nil {
		return err
	}
	defer f.Close()
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_SH); err != nil {
		return fmt.Errorf("locking %s: %w", src, err)
	}
	raw, err := io.ReadAll(bufio.NewReader(f))
	if err != nil {
		return fmt.Errorf("reading %s: %w", src, err)
	}
	if i := bytes.LastIndexByte(raw, '\n'); i+1 < len(raw) {
		raw = raw[:i+1] // an incomplete last line (a crash while writing) is left out
	}
	return writeNew(dst, bytes.NewReader(raw), 0o600)
}

// stageDatabase copies the database into staging: SQLite through its
// online backup API, PostgreSQL with pg_dump.
func stageDatabase(ctx context.Context, cfg *config.Config, db *store.DB, staging string, staged map[string]string, m *backupManifest) error {
	switch cfg.Store.Driver {
	case store.DriverSQLite:
		dst := filepath.Join(staging, filepath.FromSlash(storeSQLite))
		if err := os.MkdirAll(filepath.Dir(dst), 0o700); err != nil {
			return err
		}
		if err := db.BackupSQLite(ctx, dst); err != nil {
			return err
		}
		m.Store.Entry, m.Store.Method = storeSQLite, "sqlite online backup API"
		staged[storeSQLite] = dst
	case store.DriverPostgres:
		dsn, err := cfg.StoreDSN()
		if err != nil {
			return err
		}
		dst := filepath.Join(staging, filepath.FromSlash(storePostgres))
		if err := os.MkdirAll(filepath.Dir(dst), 0o700); err != nil {
			return err
		}
		f, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
		if err != nil {
			return err
		}
		err = store.DumpPostgres(ctx, dsn, f)
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return err
		}
		m.Store.Entry, m.Store.Method = storePostgres, "pg_dump (plain SQL, one snapshot)"
		staged[storePostgres] = dst
	default:
		return fmt.Errorf("store driver %q cannot be backed up", cfg.Store.Driver)
	}
	return nil
}

// fillManifestFiles lists every staged entry, sorted, with size and SHA-256.
func fillManifestFiles(m *backupManifest, staged map[string]string) error {
	names := make([]string, 0, len(staged))
	for n := range staged {
		names = append(names, n)
	}
	slices.Sort(names)
	m.Files = m.Files[:0]
	for _, n := range names {
		info, err := os.Stat(staged[n])
		if err != nil {
			return err
		}
		size, sum, err := sha256File(staged[n])
		if err != nil {
			return fmt.Errorf("hashing %s: %w", n, err)
		}
		m.Files = append(m.Files, manifestFile{Name: n, Size: size, SHA256: sum, Mode: uint32(info.Mode().Perm())})
	}
	return nil
}

// writeArchiveFile writes the archive to path.partial and links it to
// path only when complete and synced, never replacing an existing file.
func writeArchiveFile(path string, raw, sig []byte, m *backupManifest, staged map[string]string) error {
	partial := path + ".partial"
	f, err := os.OpenFile(partial, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return fmt.Errorf("writing the backup: %w", err)
	}
	defer os.Remove(partial)
	w := bufio.NewWriterSize(f, 1<<20)
	err = writeArchive(w, raw, sig, m, staged)
	if err == nil {
		err = w.Flush()
	}
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("writing the backup: %w", err)
	}
	if err := os.Link(partial, path); err != nil {
		return fmt.Errorf("writing the backup (nothing was overwritten): %w", err)
	}
	return nil
}
