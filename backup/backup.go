// Package backup is the online backup of a data folder and its store, and
// the restore of such a backup into a fresh data folder with the same
// token: the archive format (a manifest signed by the audit checkpoint
// key, the folder's files, a consistent copy of the database), the checks
// that refuse a corrupt archive or another deployment's, and the restore
// procedure, which never reuses a serial or CRL number and keeps the audit
// checkpoints honest.
//
// It knows neither the configuration, the token nor the store: the caller
// (cmd/thiqa) says which files to leave out and hands over the database,
// the checkpoint key and the audit log behind the interfaces declared
// here (Database, Auditor, Host, Keys, RestoredStore).
package backup

import (
	"context"
	"crypto"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/thiqa/thiqa/internal/audit"
)

// Database is the store a backup copies.
type Database interface {
	// AuditHead returns the head of the audit chain.
	AuditHead(ctx context.Context) (audit.Head, error)
	// BackupSQLite copies a SQLite database into the new file dst with
	// SQLite's online backup API.
	BackupSQLite(ctx context.Context, dst string) error
	// DumpPostgres writes a pg_dump (plain SQL, one snapshot) of a
	// PostgreSQL database to w.
	DumpPostgres(ctx context.Context, w io.Writer) error
}

// Auditor records in the audit log (*audit.Log).
type Auditor interface {
	Append(ctx context.Context, e audit.Entry) (audit.Record, error)
}

// Options describe one backup.
type Options struct {
	// Data is the data folder (absolute); Out the archive to write
	// (absolute, outside Data, not existing: see CheckOut).
	Data, Out string
	// ExcludeFiles and ExcludeDirs are the paths (absolute) under Data
	// left out, with why: the token, PIN files, the live database, caches.
	ExcludeFiles, ExcludeDirs map[string]string
	// CheckpointFile is the audit checkpoint file, copied under its
	// writers' lock.
	CheckpointFile string
	// Named lists files and folders the configuration names (setting →
	// path): those outside Data are noted as excluded.
	Named map[string]string
	// Driver is the store driver (DriverSQLite, DriverPostgres); Database
	// the store.
	Driver   string
	Database Database
	// Signer is the audit checkpoint key: it signs the manifest.
	Signer crypto.Signer
	// Audit records the backup ("data.backup") as Actor.
	Audit Auditor
	Actor string
	// Deployment, Token and Build go into the manifest (with this
	// host's name).
	Deployment Deployment
	Token      string
	Build      Build
}

// CheckOut refuses an archive path inside the data folder (a backup
// belongs on another disk) or one that exists.
func CheckOut(data, out string) error {
	if within(data, out) {
		return fmt.Errorf("--out %s is inside the data folder: a backup belongs on another disk", out)
	}
	if _, err := os.Lstat(out); err == nil {
		return fmt.Errorf("%s exists: choose a new file name (nothing was overwritten)", out)
	}
	return nil
}

// Create makes an online, consistent backup: the folder's files first,
// then the database (so that every checkpoint copied names a record the
// database copy holds), with the manifest signed by the checkpoint key;
// the archive appears at o.Out only when complete. It returns the
// manifest.
func Create(ctx context.Context, o Options) (*Manifest, error) {
	part, err := claimPartial(o.Out)
	if err != nil {
		return nil, err
	}
	defer part.release()
	staging, err := part.staging()
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(staging)

	host, _ := os.Hostname()
	m := &Manifest{
		Format: Format, Created: time.Now().UTC(), Host: host, Token: o.Token, Thiqa: o.Build,
		Deployment: o.Deployment, Store: StoreCopy{Driver: o.Driver},
	}
	staged := map[string]string{}
	if err := stageDataFiles(o, staging, staged, m); err != nil {
		return nil, err
	}
	head, err := o.Database.AuditHead(ctx)
	if err != nil {
		return nil, err
	}
	m.Audit = AuditAnchor{Seq: head.Seq, Hash: hex.EncodeToString(head.Hash)}
	if err := stageDatabase(ctx, o, staging, staged, m); err != nil {
		return nil, err
	}
	if err := fillManifestFiles(m, staged); err != nil {
		return nil, err
	}
	raw, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("encoding the manifest: %w", err)
	}
	sig, err := signManifest(o.Signer, raw)
	if err != nil {
		return nil, err
	}
	if err := part.write(raw, sig, m, staged); err != nil {
		return nil, err
	}
	if _, err := o.Audit.Append(ctx, audit.Entry{Actor: o.Actor, Action: "data.backup", Object: o.Out, Outcome: audit.OutcomeSuccess,
		Details: map[string]any{"manifestSHA256": hex.EncodeToString(manifestDigest(raw)), "auditSeq": head.Seq, "files": len(m.Files)}}); err != nil {
		return nil, fmt.Errorf("the backup %s is complete, but its audit record failed: %w", o.Out, err)
	}
	return m, nil
}

// stageDataFiles copies the data folder's files into staging/data/,
// except the exclusions; the checkpoint file under its writers' lock.
// Files the configuration names outside the folder are listed as
// excluded: they belong to the host's own backup.
func stageDataFiles(o Options, staging string, staged map[string]string, m *Manifest) error {
	noted := map[string]bool{}
	note := func(id, why string) { // id: the path, or the path and its setting
		if !noted[id] {
			noted[id] = true
			p, _, _ := strings.Cut(id, "\x00")
			m.Excluded = append(m.Excluded, p+": "+why)
		}
	}
	err := filepath.WalkDir(o.Data, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if why, ok := o.ExcludeDirs[p]; ok && d.IsDir() {
			note(p, why)
			return filepath.SkipDir
		}
		if d.IsDir() {
			return nil
		}
		if why, ok := o.ExcludeFiles[p]; ok {
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
		rel, err := filepath.Rel(o.Data, p)
		if err != nil {
			return err
		}
		name := dataPrefix + filepath.ToSlash(rel)
		dst := filepath.Join(staging, filepath.FromSlash(name))
		if p == o.CheckpointFile {
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
	// Every setting naming a file outside gets its line (two settings may
	// name one file), in the order of the settings.
	for _, what := range slices.Sorted(maps.Keys(o.Named)) {
		p := o.Named[what]
		if p != "" && !walkedInto(o.Data, p) {
			note(p+"\x00"+what, what+" is outside the data folder: back it up with the host's files")
		}
	}
	slices.Sort(m.Excluded)
	return nil
}

// stageDatabase copies the database into staging: SQLite through its
// online backup API, PostgreSQL with pg_dump.
func stageDatabase(ctx context.Context, o Options, staging string, staged map[string]string, m *Manifest) error {
	switch o.Driver {
	case DriverSQLite:
		dst := filepath.Join(staging, filepath.FromSlash(storeSQLite))
		if err := os.MkdirAll(filepath.Dir(dst), 0o700); err != nil {
			return err
		}
		if err := o.Database.BackupSQLite(ctx, dst); err != nil {
			return err
		}
		m.Store.Entry, m.Store.Method = storeSQLite, "sqlite online backup API"
		staged[storeSQLite] = dst
	case DriverPostgres:
		dst := filepath.Join(staging, filepath.FromSlash(storePostgres))
		if err := os.MkdirAll(filepath.Dir(dst), 0o700); err != nil {
			return err
		}
		f, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
		if err != nil {
			return err
		}
		err = o.Database.DumpPostgres(ctx, f)
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return err
		}
		m.Store.Entry, m.Store.Method = storePostgres, "pg_dump (plain SQL, one snapshot)"
		staged[storePostgres] = dst
	default:
		return fmt.Errorf("store driver %q cannot be backed up", o.Driver)
	}
	return nil
}

// fillManifestFiles lists every staged entry, sorted, with size and SHA-256.
func fillManifestFiles(m *Manifest, staged map[string]string) error {
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
		m.Files = append(m.Files, File{Name: n, Size: size, SHA256: sum, Mode: uint32(info.Mode().Perm())})
	}
	return nil
}

// Layout names, as absolute paths, what of a data folder a backup leaves
// out: the token and its PINs (kept by the HSM's own backup), the live
// SQLite database (copied through its backup API instead) and the
// trusted-list cache (fetched again).
type Layout struct {
	// SoftHSM is set when Thiqa manages a SoftHSM token in the folder.
	SoftHSM *SoftHSMFiles
	// PINFile holds the token's user PIN ("" when none).
	PINFile string
	// SQLite is the live SQLite database ("" with PostgreSQL).
	SQLite string
	// TrustedListCache is the trusted-list cache folder.
	TrustedListCache string
}

// SoftHSMFiles are a SoftHSM token's folder, its configuration and the
// security officer's PIN file.
type SoftHSMFiles struct{ TokenDir, Conf, SOPINFile string }

// Exclusions returns the paths a backup leaves out of the data folder,
// with why, and the folders it does not descend into (Options.ExcludeFiles
// and ExcludeDirs).
func (l Layout) Exclusions() (files map[string]string, dirs map[string]string) {
	files, dirs = map[string]string{}, map[string]string{}
	if s := l.SoftHSM; s != nil {
		dirs[s.TokenDir] = "the SoftHSM token (keys): back it up with the HSM's procedure"
		files[s.Conf] = "the SoftHSM configuration (thiqa restore writes it)"
		files[s.SOPINFile] = "the security officer PIN: kept with the token's backup"
	}
	if l.PINFile != "" {
		files[l.PINFile] = "the token's user PIN: kept with the token's backup"
	}
	if l.SQLite != "" {
		for _, suffix := range []string{"", "-wal", "-shm", "-journal"} {
			files[l.SQLite+suffix] = "the live database (copied through SQLite's backup API instead)"
		}
	}
	dirs[l.TrustedListCache] = "the trusted-list cache (fetched again)"
	return files, dirs
}

// HSMMaterial returns the top-level names, in the data folder dir, of the
// token's files (TopLevel): what an existing data folder may hold before
// a restore besides the configuration.
func (l Layout) HSMMaterial(dir string) []string {
	var paths []string
	if s := l.SoftHSM; s != nil {
		paths = append(paths, s.TokenDir, s.Conf, s.SOPINFile)
	}
	return TopLevel(dir, append(paths, l.PINFile)...)
}

// Report tells the operator what the backup written to archive holds and
// what it leaves out.
func (m *Manifest) Report(w io.Writer, archive string) {
	fmt.Fprintf(w, "backup %s\n  deployment  root CA SHA-256 %s\n  store       %s (%s), audit head at least seq %d\n  files       %d\n",
		archive, m.Deployment.RootSHA256, m.Store.Driver, m.Store.Method, m.Audit.Seq, len(m.Files))
	for _, x := range m.Excluded {
		fmt.Fprintf(w, "  not in it   %s\n", x)
	}
}
