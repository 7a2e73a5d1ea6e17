package main

import (
	"context"
	"crypto"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/thiqa/thiqa/cmd/thiqa/internal/config"
	"github.com/thiqa/thiqa/hsm"
	"github.com/thiqa/thiqa/internal/audit"
	"github.com/thiqa/thiqa/store"
	"github.com/thiqa/thiqa/timestamp"
)

// restoreFloorShift makes the serial floor of a restore: 2^24 numbers per
// second of Unix time (restoreSerialFloor).
const restoreFloorShift = 24

// restoreSerialFloor is the value a restore raises the store's number
// counters to (TSA token serials, CRL numbers): Unix seconds × 2^24.
//
// Why this is safe: a restored counter is where it was at the backup, but
// the lost deployment kept handing out numbers after it. A counter starts
// at 1 and, after a restore at time r, at r×2^24; it grows by the numbers
// handed out (blocks reserved). As long as a deployment hands out fewer
// than 2^24 (16.7 million) numbers per second — the TSA's HSM signs some
// thousands — a counter at time t is always below t×2^24. So at a restore
// at time r every number ever handed out, after the backup or after an
// earlier restore from the same backup, is below r×2^24: no serial or CRL
// number is reused. It needs the restoring machine's clock to be right
// (restore refuses a clock before the backup's creation). The 2^63 range
// lasts for Unix seconds up to 2^39 (year 19400).
func restoreSerialFloor(t time.Time) int64 { return t.Unix() << restoreFloorShift }

// runRestore restores a backup into a fresh data folder with the same
// token: it checks the archive (manifest, sizes, SHA-256, signature by the
// token's checkpoint key), that the token, the configuration and the
// database belong to the backup's deployment, loads the database, verifies
// the audit chain, raises the serial counters past anything the lost
// deployment may have handed out, archives the checkpoints the restored
// chain lacks, and only then moves the files into the folder.
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
	tgt, err := openRestoreTarget(absData)
	if err != nil {
		return err
	}
	defer tgt.release()
	staging, err := os.MkdirTemp(filepath.Dir(absData), "."+filepath.Base(absData)+".restore-")
	if err != nil {
		return fmt.Errorf("creating a staging folder next to %s: %w", absData, err)
	}
	defer os.RemoveAll(staging)

	arch, err := readArchive(*in, staging)
	if err != nil {
		return err
	}
	r := &restoring{env: env, data: absData, arch: arch, tgt: tgt, now: time.Now()}
	if err := r.resolveConfig(); err != nil {
		return err
	}
	if err := tgt.checkTargetContents(r.cfg); err != nil {
		return err
	}
	if r.now.Before(arch.manifest.Created) {
		return fmt.Errorf("this machine's clock (%s) is before the backup's creation (%s): set the clock right first (serial numbers after the restore depend on it)",
			r.now.UTC().Format(time.RFC3339), arch.manifest.Created.Format(time.RFC3339))
	}
	defer func() {
		if r.tok != nil {
			r.tok.Close()
		}
	}()
	if err := r.checkToken(ctx); err != nil {
		return err
	}
	if err := r.loadStore(ctx); err != nil {
		return err
	}
	defer r.closeStore()
	if err := r.checkStore(ctx); err != nil {
		return r.storeFailed(err)
	}
	if err := r.finishStore(ctx, *cps); err != nil {
		return r.storeFailed(err)
	}
	r.closeStore()
	if err := r.moveIntoPlace(); err != nil {
		return r.storeFailed(err)
	}
	r.report()
	return nil
}

// restoring is one restore in progress.
type restoring struct {
	env  *cliEnv
	data string
	arch *openedArchive
	tgt  *restoreTarget
	now  time.Time

	cfg          *config.Config
	folderConfig bool // the folder's own thiqa.yaml is used
	root         *folderIdentity
	tok          *hsm.Token
	checkpoint   *hsm.Signer
	db           *store.DB
	log          *audit.Log
	dbPath       string // SQLite: where the database goes
	pgLoaded     bool   // PostgreSQL: the dump was loaded

	head     audit.Head
	records  int64
	raised   []store.CounterRaise
	split    checkpointSplit
	cpFinal  string
	cpStaged string
	notes    []string
}

// staged returns where a path of the data folder is in the staging folder.
func (r *restoring) staged(p string) (string, bool) {
	rel, err := filepath.Rel(r.data, p)
	if err != nil || rel == ".." || strings.HasPrefix(rel, ".."+string(filepath.Separator)) {
		return "", false
	}
	return r.arch.entryPath(dataPrefix + filepath.ToSlash(rel)), true
}

// resolveConfig picks the configuration: the folder's own thiqa.yaml
// when there is one (how this host reaches its HSM and database), else
// the backup's. Either must describe the backup's root CA.
func (r *restoring) resolveConfig() error {
	var err error
	if _, statErr := os.Stat(config.Path(r.data)); statErr == nil {
		r.folderConfig = true
		r.cfg, err = config.Load(r.data)
		if err != nil {
			return fmt.Errorf("the folder's configuration: %w", err)
		}
	} else {
		raw, err := os.ReadFile(r.arch.entryPath(dataPrefix + config.FileName))
		if err != nil {
			return corrupt("the backup holds no %s", config.FileName)
		}
		if r.cfg, err = config.Parse(raw, r.data); err != nil {
			return fmt.Errorf("the backup's configuration: %w", err)
		}
	}
	m := &r.arch.manifest
	if !r.cfg.CA.Enabled() {
		return fmt.Errorf("%w: the configuration runs no CA, the backup is of root %s", errOtherDeployment, m.Deployment.RootSubject)
	}
	rootPath := caCertPath(r.cfg, r.cfg.CA.Root.Name)
	staged, ok := r.staged(rootPath)
	if !ok {
		return fmt.Errorf("the configuration keeps the root CA certificate outside the data folder (%s): restore it by hand", rootPath)
	}
	raw, err := os.ReadFile(staged)
	if err != nil {
		return fmt.Errorf("%w: the configuration names the root CA certificate %s, which the backup does not hold", errOtherDeployment, rootPath)
	}
	c, err := parseCertPEM(raw)
	if err != nil {
		return corrupt("root CA certificate: %v", err)
	}
	r.root = &folderIdentity{root: c, path: rootPath, id: store.Deployment{RootSHA256: rootFingerprint(c)}}
	if r.root.id.RootSHA256 != m.Deployment.RootSHA256 {
		return corrupt("the root CA certificate in it has SHA-256 %s, the manifest says %s", r.root.id.RootSHA256, m.Deployment.RootSHA256)
	}
	if want := r.cfg.CA.Root.CommonName; want != c.Subject.CommonName {
		return fmt.Errorf("%w: the configuration in %s names the root CA %q, the backup's root is %q (SHA-256 %s); nothing was changed",
			errOtherDeployment, r.data, want, c.Subject.CommonName, r.root.id.RootSHA256)
	}
	if r.cfg.Store.Driver != m.Store.Driver {
		return fmt.Errorf("the backup holds a %s store, the configuration names %s: restore it with a configuration of the same store driver",
			m.Store.Driver, r.cfg.Store.Driver)
	}
	return nil
}

// checkToken opens the token the configuration names and checks that it
// is the backup's: it holds the root key of the backup's root certificate
// and the checkpoint key that signed the manifest.
func (r *restoring) checkToken(ctx context.Context) error {
	if s := r.cfg.HSM.SoftHSM; s != nil {
		conf := r.cfg.Resolve(s.Conf)
		if _, err := os.Stat(conf); errors.Is(err, os.ErrNotExist) {
			staged, ok := r.staged(conf)
			if !ok {
				return fmt.Errorf("the SoftHSM configuration %s is missing", conf)
			}
			body := fmt.Sprintf("# SoftHSM2 configuration written by thiqa restore\ndirectories.tokendir = %s\nobjectstore.backend = file\nlog.level = ERROR\nslots.removable = false\n", r.cfg.Resolve(s.TokenDir))
			if err := writeFileExclusive(staged, []byte(body), 0o600); err != nil {
				return fmt.Errorf("writing the SoftHSM configuration: %w", err)
			}
			conf = staged
		}
		if err := os.Setenv("SOFTHSM2_CONF", conf); err != nil {
			return fmt.Errorf("setting SOFTHSM2_CONF: %w", err)
		}
	}
	logger := newLogger(r.env.stderr, config.LogConfig{Level: "warn", Format: r.cfg.Log.Format})
	tok, err := openToken(ctx, r.cfg, logger, nil)
	if err != nil {
		return fmt.Errorf("%w: a restore needs the deployment's token: put it back first (SoftHSM: the token folder and the PIN files, from the HSM backup, into %s)", err, r.data)
	}
	r.tok = tok
	label, err := keyLabel(r.cfg, r.cfg.CA.Root.Key)
	if err != nil {
		return err
	}
	key, err := tok.FindKey(ctx, label)
	if errors.Is(err, hsm.ErrKeyNotFound) {
		return fmt.Errorf("%w: token %q has no root CA key %q: it is not the token of the backup's deployment (root %s); nothing was changed",
			errOtherDeployment, r.cfg.HSM.TokenLabel, label, r.root.root.Subject)
	}
	if err != nil {
		return fmt.Errorf("root CA key %q: %w", label, err)
	}
	if pub, ok := key.Public().(interface{ Equal(crypto.PublicKey) bool }); !ok || !pub.Equal(r.root.root.PublicKey) {
		return fmt.Errorf("%w: the root CA key on token %q is not the key of the backup's root CA %q (SHA-256 %s): this token belongs to another deployment; nothing was changed",
			errOtherDeployment, r.cfg.HSM.TokenLabel, r.root.root.Subject.CommonName, r.root.id.RootSHA256)
	}
	p := &platform{cfg: r.cfg, token: tok}
	if r.checkpoint, err = checkpointKey(ctx, p); err != nil {
		return err
	}
	if !verifyManifest(r.checkpoint.Public(), r.arch.raw, r.arch.sig) {
		return fmt.Errorf("%w: the manifest's signature does not verify with the audit checkpoint key on token %q: the backup was made by another deployment, or its manifest was altered; nothing was changed",
			errOtherDeployment, r.cfg.HSM.TokenLabel)
	}
	return nil
}

// loadStore puts the backup's database in place for checking: a SQLite
// copy stays in the staging folder until the end; a PostgreSQL dump is
// loaded, in one transaction, into the configured database, which must be
// empty.
func (r *restoring) loadStore(ctx context.Context) error {
	dsn, err := r.cfg.StoreDSN()
	if err != nil {
		return err
	}
	logger := newLogger(r.env.stderr, config.LogConfig{Level: "warn", Format: r.cfg.Log.Format})
	sc := store.Config{Driver: r.cfg.Store.Driver, DSN: dsn, MaxOpenConns: r.cfg.Store.MaxOpenConns, Synchronous: r.cfg.Store.SQLiteSynchronous()}
	switch r.cfg.Store.Driver {
	case store.DriverSQLite:
		r.dbPath = dsn
		if _, err := os.Lstat(dsn); err == nil {
			return fmt.Errorf("%w: the database %s exists (nothing was changed)", errTargetNotEmpty, dsn)
		}
		sc.DSN = r.arch.entryPath(storeSQLite)
	case store.DriverPostgres:
		st, err := store.InspectPostgres(ctx, dsn)
		if err != nil {
			return err
		}
		if d := st.Deployment; d != nil && d.RootSHA256 != r.root.id.RootSHA256 {
			return fmt.Errorf("%w: the configured database belongs to the deployment with root SHA-256 %s (recorded %s), the backup to %s; nothing was changed",
				errOtherDeployment, d.RootSHA256, d.CreatedAt.Format(time.RFC3339), r.root.id.RootSHA256)
		}
		if st.Tables > 0 {
			return fmt.Errorf("%w: the configured database holds %d tables (a live deployment?): a restore needs an empty database (createdb a new one); nothing was changed",
				errTargetNotEmpty, st.Tables)
		}
		f, err := os.Open(r.arch.entryPath(storePostgres))
		if err != nil {
			return err
		}
		err = store.RestorePostgres(ctx, dsn, f)
		f.Close()
		if err != nil {
			return err
		}
		r.pgLoaded = true
	}
	db, err := store.Open(ctx, sc, logger)
	if err != nil {
		return r.storeFailed(fmt.Errorf("opening the restored %s store: %w", r.cfg.Store.Driver, err))
	}
	r.db = db
	r.log = newAuditLog(db, logger, nil)
	return nil
}

// closeStore closes the audit log and the store (once).
func (r *restoring) closeStore() {
	if r.log != nil {
		r.log.Close()
		r.log = nil
	}
	if r.db != nil {
		r.db.Close()
		r.db = nil
	}
}

// storeFailed adds to err what an operator must know when the PostgreSQL
// database was already loaded.
func (r *restoring) storeFailed(err error) error {
	if r.pgLoaded {
		return fmt.Errorf("%w (the configured PostgreSQL database now holds the backup's data: drop and recreate it before trying again; the data folder was not changed)", err)
	}
	return err
}

// checkStore checks the loaded database: it belongs to the backup's
// deployment, its audit chain is intact and holds the record the manifest
// names.
func (r *restoring) checkStore(ctx context.Context) error {
	have, _, err := r.db.RecordDeployment(ctx, r.root.id)
	if err != nil {
		return err
	}
	if have.RootSHA256 != r.root.id.RootSHA256 {
		return fmt.Errorf("%w: the backup's database records root SHA-256 %s, its root CA certificate is %s", errBackupCorrupt, have.RootSHA256, r.root.id.RootSHA256)
	}
	rep, err := audit.Verify(ctx, r.db)
	if err != nil {
		return fmt.Errorf("walking the restored audit chain: %w", err)
	}
	if !rep.OK() {
		return fmt.Errorf("the restored audit chain is broken: %s", rep)
	}
	a := r.arch.manifest.Audit
	if a.Seq > 0 {
		h, err := recordHash(ctx, r.db, a.Seq)
		if err != nil {
			return err
		}
		if hex.EncodeToString(h) != a.Hash {
			return corrupt("the database copy does not hold audit record %d with the hash the manifest names", a.Seq)
		}
	}
	r.head, r.records = rep.Head, rep.Verified
	return nil
}

// finishStore raises the number counters, records the restore in the
// audit log and rewrites the checkpoint file.
func (r *restoring) finishStore(ctx context.Context, newerCheckpoints string) error {
	cas := []string{r.cfg.CA.Root.Name}
	for _, is := range r.cfg.CA.Issuers {
		cas = append(cas, is.Name)
	}
	raised, err := r.db.RaiseCounters(ctx, restoreSerialFloor(r.now), []string{timestamp.SerialCounter}, cas)
	if err != nil {
		return err
	}
	r.raised = raised
	m := &r.arch.manifest
	if _, err := r.log.Append(ctx, audit.Entry{Actor: operatorName(), Action: "data.restore", Object: r.data, Outcome: audit.OutcomeSuccess,
		Details: map[string]any{
			"backupCreated": m.Created.Format(time.RFC3339Nano), "backupHost": m.Host, "backupThiqa": m.Thiqa.Version,
			"manifestSHA256": hex.EncodeToString(manifestDigest(r.arch.raw)), "restoredHeadSeq": r.head.Seq,
			"serialFloor": restoreSerialFloor(r.now),
		}}); err != nil {
		return fmt.Errorf("writing the restore's audit record: %w", err)
	}
	if r.head, err = r.db.AuditHead(ctx); err != nil {
		return err
	}

	r.cpFinal = r.cfg.ResolvedAudit().CheckpointFile
	staged, ok := r.staged(r.cpFinal)
	if !ok {
		r.notes = append(r.notes, fmt.Sprintf("audit.checkpointFile %s is outside the data folder and was not restored: if it names records after the backup, move it to an archive before thiqa serve", r.cpFinal))
		return nil
	}
	r.cpStaged = staged
	src, err := os.ReadFile(staged)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	if newerCheckpoints != "" {
		if src, err = os.ReadFile(newerCheckpoints); err != nil {
			return fmt.Errorf("--checkpoints: %w", err)
		}
	}
	r.split, err = restoreCheckpoints(ctx, r.db, src, staged, r.checkpoint, r.now)
	return err
}

// moveIntoPlace moves the staged files into the data folder (the whole
// staging folder when the data folder does not exist) and the SQLite
// database to its configured place.
func (r *restoring) moveIntoPlace() error {
	from := filepath.Join(r.arch.dir, strings.TrimSuffix(dataPrefix, "/"))
	var db []string
	if r.dbPath != "" {
		for _, suffix := range []string{"", "-wal", "-shm"} {
			if _, err := os.Stat(r.arch.entryPath(storeSQLite) + suffix); err == nil {
				db = append(db, suffix)
			}
		}
		for _, suffix := range db {
			if _, err := os.Lstat(r.dbPath + suffix); err == nil {
				return fmt.Errorf("%w: %s appeared during the restore", errTargetNotEmpty, r.dbPath+suffix)
			}
		}
	}
	if !r.tgt.exists {
		if err := os.Chmod(from, 0o700); err != nil {
			return err
		}
		if err := os.Rename(from, r.data); err != nil {
			return fmt.Errorf("moving the restored folder into place: %w", err)
		}
	} else {
		if r.folderConfig {
			if err := r.setBackupConfigAside(from); err != nil {
				return err
			}
		}
		names, err := planMove(from, r.data)
		if err != nil {
			return err
		}
		if err := moveFiles(from, r.data, names); err != nil {
			return err
		}
	}
	for _, suffix := range db {
		if err := os.MkdirAll(filepath.Dir(r.dbPath), 0o700); err != nil {
			return err
		}
		if err := moveFile(r.arch.entryPath(storeSQLite)+suffix, r.dbPath+suffix); err != nil {
			return err
		}
	}
	return nil
}

// setBackupConfigAside keeps the folder's own configuration: the
// backup's copy is dropped when identical, else written beside it as
// thiqa.yaml.from-backup (for comparison).
func (r *restoring) setBackupConfigAside(from string) error {
	staged := filepath.Join(from, config.FileName)
	same, err := sameContent(staged, config.Path(r.data))
	if err != nil {
		return err
	}
	if same {
		return os.Remove(staged)
	}
	aside := config.FileName + ".from-backup"
	r.notes = append(r.notes, fmt.Sprintf("the backup's configuration differs from the folder's: it is in %s for comparison", filepath.Join(r.data, aside)))
	return os.Rename(staged, filepath.Join(from, aside))
}

// report tells the operator what was restored and what to do next.
func (r *restoring) report() {
	m := &r.arch.manifest
	w := r.env.stdout
	fmt.Fprintf(w, "restored the backup of %s (made on %s by thiqa %s) into %s\n", m.Created.Format(time.RFC3339), m.Host, m.Thiqa.Version, r.data)
	fmt.Fprintf(w, "  deployment   root CA SHA-256 %s (%s); token %q holds its key\n", r.root.id.RootSHA256, r.root.root.Subject.CommonName, r.cfg.HSM.TokenLabel)
	if r.folderConfig {
		fmt.Fprintf(w, "  config       the folder's own %s was kept (the backup's copy was not written)\n", config.FileName)
	}
	fmt.Fprintf(w, "  store        %s: audit chain OK, %d records restored; head now seq %d (the restore's own record)\n", r.cfg.Store.Driver, r.records, r.head.Seq)
	for _, c := range r.raised {
		fmt.Fprintf(w, "  serials      %s %q raised from %d to %d: numbers handed out after the backup are never reused\n", c.Table, c.Name, c.From, c.To)
	}
	if r.cpStaged != "" {
		fmt.Fprintf(w, "  checkpoints  %s\n", r.split.describe(r.cpFinal))
	}
	for _, n := range r.notes {
		fmt.Fprintf(w, "  note         %s\n", n)
	}
	fmt.Fprintf(w, "  lost         what was issued after %s (certificates, time-stamps, signatures, revocations) is not in the store: re-revoke what was revoked since\n", m.Created.Format(time.RFC3339))
	fmt.Fprintf(w, "next: thiqa audit verify --data %s && thiqa serve --data %s\n", r.data, r.data)
}
