package backup

import (
	"bytes"
	"context"
	"crypto"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/thiqa/thiqa/internal/audit"
	"github.com/thiqa/thiqa/internal/pemcert"
)

// floorShift makes the serial floor of a restore: 2^24 numbers per second
// of Unix time (SerialFloor).
const floorShift = 24

// SerialFloor is the value a restore at t raises the store's number
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
// number is reused. It needs the restoring machine's clock to be right:
// Restore refuses a clock before the backup's creation, and takes the
// floor at the newest checkpoint the deployment signed when the clock is
// before it (Restored.floorTime). The 2^63 range
// lasts for Unix seconds up to 2^39 (year 19400).
func SerialFloor(t time.Time) int64 { return t.Unix() << floorShift }

// ErrKeyNotFound is what Keys.PublicKey returns (wrapped) when the token
// has no key with that label.
var ErrKeyNotFound = errors.New("no such key on the token")

// Settings are what a restore needs of the configuration the restored
// folder will run with (Host.Configure).
type Settings struct {
	// OwnConfig says the folder's own configuration is used (the
	// backup's copy is not written).
	OwnConfig bool
	// CA says the configuration runs a CA; a backup is identified by its
	// root.
	CA bool
	// RootCertificate is the root CA certificate's path (absolute, in
	// the data folder); RootCommonName the root the configuration names;
	// RootKeyLabel the label of the root key on the token.
	RootCertificate, RootCommonName, RootKeyLabel string
	// RootOffline says the root key is offline (a key ceremony's root):
	// the configuration names neither the root nor its key, and the token
	// holds no root key. The token is then recognised by the checkpoint
	// key that signed the manifest alone.
	RootOffline bool
	// Token is the token's label.
	Token string
	// Driver is the store driver; SQLiteFile, for SQLite, where the
	// database goes.
	Driver, SQLiteFile string
	// CheckpointFile is the audit checkpoint file (absolute).
	CheckpointFile string
	// CRLIssuers are the CAs whose CRL numbers a restore raises.
	CRLIssuers []string
	// Layout is where the folder keeps the token's files: what the HSM's
	// backup procedure puts back (the SoftHSM token folder, its
	// configuration, the PIN files), which an existing data folder may
	// hold besides the configuration (Layout.HSMMaterial).
	Layout Layout
	// SoftHSMConf is the SoftHSM configuration a restore writes when the
	// folder lacks Layout.SoftHSM.Conf (a backup never holds it).
	SoftHSMConf []byte
}

// Host is the host a backup is restored on: its configuration, its token
// and its database. cmd/thiqa implements it.
type Host interface {
	// Configure reads the configuration the restored folder will run
	// with: the folder's own when it has one (Settings.OwnConfig), else
	// the backup's copy at backupConfig (in the staging folder; missing
	// when the backup holds none).
	Configure(backupConfig string) (Settings, error)
	// OpenToken opens the token the configuration names, through the
	// SoftHSM configuration file softHSMConf ("" when the token is no
	// SoftHSM token the folder manages).
	OpenToken(ctx context.Context, softHSMConf string) (Keys, error)
	// InspectPostgres says what the configured PostgreSQL database holds.
	InspectPostgres(ctx context.Context) (PostgresState, error)
	// LoadPostgres loads a pg_dump into the configured PostgreSQL
	// database, in one transaction.
	LoadPostgres(ctx context.Context, dump io.Reader) error
	// OpenStore opens the restored store: the SQLite copy at sqliteCopy,
	// or the configured PostgreSQL database ("").
	OpenStore(ctx context.Context, sqliteCopy string) (RestoredStore, error)
}

// Keys are the keys on the token a restore checks.
type Keys interface {
	// PublicKey returns the public half of the key labelled label, an
	// error wrapping ErrKeyNotFound when the token has none.
	PublicKey(ctx context.Context, label string) (crypto.PublicKey, error)
	// CheckpointKey returns the audit checkpoint key.
	CheckpointKey(ctx context.Context) (crypto.Signer, error)
	Close() error
}

// PostgresState is what a PostgreSQL database holds before a restore.
type PostgresState struct {
	// Tables counts the tables outside the system schemas.
	Tables int
	// RootSHA256 is the deployment identity it records ("" for none),
	// recorded at RecordedAt.
	RootSHA256 string
	RecordedAt time.Time
}

// RestoredStore is the restored database.
type RestoredStore interface {
	audit.Store
	Auditor
	// RecordDeployment records rootSHA256 as the store's deployment
	// unless it has one, and returns the one it has.
	RecordDeployment(ctx context.Context, rootSHA256 string) (string, error)
	// RaiseCounters raises the TSA serial counters and the CRL numbers of
	// crlIssuers to floor at least, and says what it raised.
	RaiseCounters(ctx context.Context, floor int64, crlIssuers []string) ([]Raised, error)
	Close() error
}

// Raised is one counter a restore raised.
type Raised struct {
	// Table is tsa_serial_counters or crl_numbers.
	Table string
	// Name is the counter's name (the TSA counter, or the CA's name).
	Name     string
	From, To int64
}

// RestoreOptions describe one restore.
type RestoreOptions struct {
	// Archive is the backup; Data the data folder to restore into
	// (absolute): new, or holding only HSM material and a configuration.
	Archive, Data string
	// Checkpoints is a newer copy of the audit checkpoint file, used
	// instead of the backup's ("" for none).
	Checkpoints string
	// ConfigFile is the configuration's file name in a data folder.
	ConfigFile string
	Host       Host
	// Actor records the restore in the audit log.
	Actor string
}

// Restored is a restore done: Report says what happened.
type Restored struct {
	o    RestoreOptions
	arch *openedArchive
	tgt  *target
	now  time.Time
	set  Settings

	root       *x509.Certificate
	rootSHA256 string
	keys       Keys
	checkpoint crypto.Signer
	db         RestoredStore
	pgLoaded   bool // PostgreSQL: the dump was loaded

	head     audit.Head
	records  int64
	raised   []Raised
	split    checkpointSplit
	cpStaged string
	notes    []string
}

// Restore restores a backup into a fresh data folder with the same token:
// it checks the archive (manifest, sizes, SHA-256, signature by the
// token's checkpoint key), that the token, the configuration and the
// database belong to the backup's deployment, loads the database, verifies
// the audit chain, raises the serial counters past anything the lost
// deployment may have handed out (SerialFloor), archives the checkpoints
// the restored chain lacks, and only then moves the files into the folder.
// Any refusal before that leaves the folder as it was.
func Restore(ctx context.Context, o RestoreOptions) (*Restored, error) {
	tgt, err := openTarget(o.Data)
	if err != nil {
		return nil, err
	}
	defer tgt.release()
	staging, err := tgt.makeStaging()
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(staging)

	arch, err := readArchive(o.Archive, staging)
	if err != nil {
		return nil, err
	}
	r := &Restored{o: o, arch: arch, tgt: tgt, now: time.Now()}
	if err := r.resolveConfig(); err != nil {
		return nil, err
	}
	if err := tgt.checkContents(o.ConfigFile, r.set.Layout.HSMMaterial(o.Data)); err != nil {
		return nil, err
	}
	if r.now.Before(arch.manifest.Created) {
		return nil, fmt.Errorf("this machine's clock (%s) is before the backup's creation (%s): set the clock right first (serial numbers after the restore depend on it)",
			r.now.UTC().Format(time.RFC3339), arch.manifest.Created.Format(time.RFC3339))
	}
	defer func() {
		if r.keys != nil {
			r.keys.Close()
		}
	}()
	if err := r.checkToken(ctx); err != nil {
		return nil, err
	}
	if err := r.loadStore(ctx); err != nil {
		return nil, err
	}
	defer r.closeStore()
	if err := r.checkStore(ctx); err != nil {
		return nil, r.storeFailed(err)
	}
	if err := r.finishStore(ctx); err != nil {
		return nil, r.storeFailed(err)
	}
	r.closeStore()
	if err := r.moveIntoPlace(); err != nil {
		return nil, r.storeFailed(err)
	}
	return r, nil
}

// staged returns where a path of the data folder is in the staging folder.
func (r *Restored) staged(p string) (string, bool) {
	if !within(r.o.Data, p) {
		return "", false
	}
	rel, err := filepath.Rel(r.o.Data, p)
	if err != nil {
		return "", false
	}
	return r.arch.entryPath(dataPrefix + filepath.ToSlash(rel)), true
}

// resolveConfig has the host pick the configuration (the folder's own, how
// this host reaches its HSM and database, or the backup's), which must
// describe the backup's root CA.
func (r *Restored) resolveConfig() error {
	set, err := r.o.Host.Configure(r.arch.entryPath(dataPrefix + r.o.ConfigFile))
	if err != nil {
		return err
	}
	r.set = set
	m := &r.arch.manifest
	if !set.CA {
		return fmt.Errorf("%w: the configuration runs no CA, the backup is of root %s", ErrOtherDeployment, m.Deployment.RootSubject)
	}
	rootPath := set.RootCertificate
	staged, ok := r.staged(rootPath)
	if !ok {
		return fmt.Errorf("the configuration keeps the root CA certificate outside the data folder (%s): restore it by hand", rootPath)
	}
	raw, err := os.ReadFile(staged)
	if err != nil {
		return fmt.Errorf("%w: the configuration names the root CA certificate %s, which the backup does not hold", ErrOtherDeployment, rootPath)
	}
	c, err := pemcert.Parse(raw)
	if err != nil {
		return corrupt("root CA certificate: %v", err)
	}
	sum := sha256.Sum256(c.Raw)
	r.root, r.rootSHA256 = c, hex.EncodeToString(sum[:])
	if r.rootSHA256 != m.Deployment.RootSHA256 {
		return corrupt("the root CA certificate in it has SHA-256 %s, the manifest says %s", r.rootSHA256, m.Deployment.RootSHA256)
	}
	if want := set.RootCommonName; !set.RootOffline && want != c.Subject.CommonName {
		return fmt.Errorf("%w: the configuration in %s names the root CA %q, the backup's root is %q (SHA-256 %s); nothing was changed",
			ErrOtherDeployment, r.o.Data, want, c.Subject.CommonName, r.rootSHA256)
	}
	if set.Driver != m.Store.Driver {
		return fmt.Errorf("the backup holds a %s store, the configuration names %s: restore it with a configuration of the same store driver",
			m.Store.Driver, set.Driver)
	}
	return nil
}

// checkToken opens the token the configuration names and checks that it
// is the backup's: it holds the root key of the backup's root certificate
// (unless the root is offline) and the checkpoint key that signed the
// manifest.
func (r *Restored) checkToken(ctx context.Context) error {
	conf, err := r.softHSMConf()
	if err != nil {
		return err
	}
	keys, err := r.o.Host.OpenToken(ctx, conf)
	if err != nil {
		return err
	}
	r.keys = keys
	if !r.set.RootOffline {
		if err := r.checkRootKey(ctx); err != nil {
			return err
		}
	}
	if r.checkpoint, err = keys.CheckpointKey(ctx); err != nil {
		return err
	}
	if !verifyManifest(r.checkpoint.Public(), r.arch.raw, r.arch.sig) {
		return fmt.Errorf("%w: the manifest's signature does not verify with the audit checkpoint key on token %q: the backup was made by another deployment, or its manifest was altered; nothing was changed",
			ErrOtherDeployment, r.set.Token)
	}
	return nil
}

// checkRootKey checks that the token holds the root key of the backup's
// root certificate (a root kept online).
func (r *Restored) checkRootKey(ctx context.Context) error {
	label := r.set.RootKeyLabel
	pub, err := r.keys.PublicKey(ctx, label)
	if errors.Is(err, ErrKeyNotFound) {
		return fmt.Errorf("%w: token %q has no root CA key %q: it is not the token of the backup's deployment (root %s); nothing was changed",
			ErrOtherDeployment, r.set.Token, label, r.root.Subject)
	}
	if err != nil {
		return fmt.Errorf("root CA key %q: %w", label, err)
	}
	if k, ok := pub.(interface{ Equal(crypto.PublicKey) bool }); !ok || !k.Equal(r.root.PublicKey) {
		return fmt.Errorf("%w: the root CA key on token %q is not the key of the backup's root CA %q (SHA-256 %s): this token belongs to another deployment; nothing was changed",
			ErrOtherDeployment, r.set.Token, r.root.Subject.CommonName, r.rootSHA256)
	}
	return nil
}

// softHSMConf returns the SoftHSM configuration the token opens with (""
// without one): the folder's own, or, when the folder lacks it,
// Settings.SoftHSMConf written into the staging folder.
func (r *Restored) softHSMConf() (string, error) {
	s := r.set.Layout.SoftHSM
	if s == nil {
		return "", nil
	}
	if _, err := os.Stat(s.Conf); !errors.Is(err, os.ErrNotExist) {
		return s.Conf, nil
	}
	dst, ok := r.staged(s.Conf)
	if !ok {
		return "", fmt.Errorf("the SoftHSM configuration %s is missing", s.Conf)
	}
	if err := writeNew(dst, bytes.NewReader(r.set.SoftHSMConf), 0o600); err != nil {
		return "", fmt.Errorf("writing the SoftHSM configuration: %w", err)
	}
	return dst, nil
}

// loadStore puts the backup's database in place for checking: a SQLite
// copy stays in the staging folder until the end; a PostgreSQL dump is
// loaded, in one transaction, into the configured database, which must be
// empty.
func (r *Restored) loadStore(ctx context.Context) error {
	var sqliteCopy string
	switch r.set.Driver {
	case DriverSQLite:
		if _, err := os.Lstat(r.set.SQLiteFile); err == nil {
			return fmt.Errorf("%w: the database %s exists (nothing was changed)", ErrTargetNotEmpty, r.set.SQLiteFile)
		}
		sqliteCopy = r.arch.entryPath(storeSQLite)
	case DriverPostgres:
		st, err := r.o.Host.InspectPostgres(ctx)
		if err != nil {
			return err
		}
		if st.RootSHA256 != "" && st.RootSHA256 != r.rootSHA256 {
			return fmt.Errorf("%w: the configured database belongs to the deployment with root SHA-256 %s (recorded %s), the backup to %s; nothing was changed",
				ErrOtherDeployment, st.RootSHA256, st.RecordedAt.Format(time.RFC3339), r.rootSHA256)
		}
		if st.Tables > 0 {
			err := fmt.Errorf("%w: the configured database holds %d tables (a live deployment?): a restore needs an empty database (createdb a new one); nothing was changed",
				ErrTargetNotEmpty, st.Tables)
			if st.RootSHA256 == r.rootSHA256 {
				// The backup's own deployment: the lost one's database,
				// or the backup itself, loaded by an interrupted restore.
				err = fmt.Errorf("%w; it records this backup's deployment: when it is not a live database but one an interrupted restore loaded, drop and recreate it, then run the restore again", err)
			}
			return err
		}
		f, err := os.Open(r.arch.entryPath(storePostgres))
		if err != nil {
			return err
		}
		err = r.o.Host.LoadPostgres(ctx, f)
		f.Close()
		if err != nil {
			return err
		}
		r.pgLoaded = true
	}
	db, err := r.o.Host.OpenStore(ctx, sqliteCopy)
	if err != nil {
		return r.storeFailed(fmt.Errorf("opening the restored %s store: %w", r.set.Driver, err))
	}
	r.db = db
	return nil
}

// closeStore closes the store (once).
func (r *Restored) closeStore() {
	if r.db != nil {
		r.db.Close()
		r.db = nil
	}
}

// storeFailed adds to err what an operator must know when the PostgreSQL
// database was already loaded.
func (r *Restored) storeFailed(err error) error {
	if r.pgLoaded {
		return fmt.Errorf("%w (the configured PostgreSQL database now holds the backup's data: drop and recreate it before trying again; the data folder was not changed)", err)
	}
	return err
}

// checkStore checks the loaded database: it belongs to the backup's
// deployment, its audit chain is intact and holds the record the manifest
// names.
func (r *Restored) checkStore(ctx context.Context) error {
	have, err := r.db.RecordDeployment(ctx, r.rootSHA256)
	if err != nil {
		return err
	}
	if have != r.rootSHA256 {
		return fmt.Errorf("%w: the backup's database records root SHA-256 %s, its root CA certificate is %s", ErrCorrupt, have, r.rootSHA256)
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
func (r *Restored) finishStore(ctx context.Context) error {
	cpFile := r.set.CheckpointFile
	staged, inFolder := r.staged(cpFile)
	var src []byte
	var err error
	switch {
	case r.o.Checkpoints != "":
		if src, err = os.ReadFile(r.o.Checkpoints); err != nil {
			return fmt.Errorf("--checkpoints: %w", err)
		}
	case inFolder:
		if src, err = os.ReadFile(staged); err != nil && !errors.Is(err, os.ErrNotExist) {
			return err
		}
	default:
		// Outside the data folder the backup holds no copy, but the file
		// at its place on this host, when there is one, is the
		// deployment's own (it is not restored, only read): evidence of
		// how far its clock got, as a copy given with --checkpoints is.
		if src, err = os.ReadFile(cpFile); err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("reading audit.checkpointFile %s for the serial floor (or give a copy with --checkpoints): %w", cpFile, err)
		}
	}
	floorAt, evidence := r.floorTime(src)
	raised, err := r.db.RaiseCounters(ctx, SerialFloor(floorAt), r.set.CRLIssuers)
	if err != nil {
		return err
	}
	r.raised = raised
	m := &r.arch.manifest
	details := map[string]any{
		"backupCreated": m.Created.Format(time.RFC3339Nano), "backupHost": m.Host, "backupThiqa": m.Thiqa.Version,
		"manifestSHA256": hex.EncodeToString(manifestDigest(r.arch.raw)), "restoredHeadSeq": r.head.Seq,
		"serialFloor": SerialFloor(floorAt),
	}
	if !evidence.IsZero() {
		// The record says why its floor is past its own time.
		details["serialFloorCheckpoint"] = evidence.UTC().Format(time.RFC3339Nano)
	}
	if _, err := r.db.Append(ctx, audit.Entry{Actor: r.o.Actor, Action: "data.restore", Object: r.o.Data, Outcome: audit.OutcomeSuccess,
		Details: details}); err != nil {
		return fmt.Errorf("writing the restore's audit record: %w", err)
	}
	if r.head, err = r.db.AuditHead(ctx); err != nil {
		return err
	}

	if !inFolder {
		r.notes = append(r.notes, fmt.Sprintf("audit.checkpointFile %s is outside the data folder and was not restored: if it names records after the backup, move it to an archive before thiqa serve", cpFile))
		return nil
	}
	r.cpStaged = staged
	r.split, err = restoreCheckpoints(ctx, r.db, src, staged, r.checkpoint, r.now)
	return err
}

// floorTime is the time the serial floor is taken at (SerialFloor): this
// machine's clock, or, when the deployment's newest signed checkpoint in
// src (the backup's checkpoint file, the newer copy given with
// --checkpoints, or the file outside the data folder at its place) is
// dated after it, a second past that checkpoint. The
// lost deployment's clock reached that time, and numbers it handed out
// after a restore of its own at such a time would otherwise lie above
// the floor: the floor trusts evidence signed with the deployment's key
// over a clock that may be behind. A note in the report says so, and
// checkpoint is that checkpoint's time (zero when the clock is used).
func (r *Restored) floorTime(src []byte) (at, checkpoint time.Time) {
	t, ok := newestSignedTime(src, r.checkpoint.Public())
	if !ok || !t.After(r.now) {
		return r.now, time.Time{}
	}
	r.notes = append(r.notes, fmt.Sprintf("this machine's clock (%s) is before the newest checkpoint the deployment signed (%s): the serial floor was taken from the checkpoint; set the clock right before thiqa serve (certificates, CRLs and time-stamps carry it)",
		r.now.UTC().Format(time.RFC3339), t.UTC().Format(time.RFC3339)))
	return t.Add(time.Second), t
}

// moveIntoPlace moves the staged files into the data folder (the whole
// staging folder when the data folder does not exist) and the SQLite
// database to its configured place.
//
// A database inside the data folder (the default, thiqa.db) is moved into
// the staged folder first, so that it arrives with the rest: a new data
// folder then appears, database and all, by one rename, and a kill cannot
// leave the folder without its database (which a run again refuses as not
// empty, with the database copy left next to it). Only a database outside
// the data folder is moved on its own, after the folder.
func (r *Restored) moveIntoPlace() error {
	from := filepath.Join(r.arch.dir, strings.TrimSuffix(dataPrefix, "/"))
	dbPath := r.set.SQLiteFile
	var db []string
	if r.set.Driver == DriverSQLite {
		for _, suffix := range []string{"", "-wal", "-shm"} {
			if _, err := os.Stat(r.arch.entryPath(storeSQLite) + suffix); err == nil {
				db = append(db, suffix)
			}
		}
		for _, suffix := range db {
			if _, err := os.Lstat(dbPath + suffix); err == nil {
				return fmt.Errorf("%w: %s appeared during the restore", ErrTargetNotEmpty, dbPath+suffix)
			}
		}
		if staged, ok := r.staged(dbPath); ok && filepath.Clean(dbPath) != filepath.Clean(r.o.Data) {
			if err := r.stageDatabase(staged, db); err != nil {
				return err
			}
			db = nil // it moves with the folder
		}
	}
	if !r.tgt.exists {
		if err := os.Chmod(from, 0o700); err != nil {
			return err
		}
		if err := os.Rename(from, r.o.Data); err != nil {
			return fmt.Errorf("moving the restored folder into place: %w", err)
		}
	} else {
		if r.set.OwnConfig {
			if err := r.setBackupConfigAside(from); err != nil {
				return err
			}
		}
		names, err := planMove(from, r.o.Data)
		if err != nil {
			return err
		}
		if err := moveFiles(from, r.o.Data, names); err != nil {
			return err
		}
	}
	for _, suffix := range db {
		if err := os.MkdirAll(filepath.Dir(dbPath), 0o700); err != nil {
			return err
		}
		if err := moveFile(r.arch.entryPath(storeSQLite)+suffix, dbPath+suffix); err != nil {
			return err
		}
	}
	return nil
}

// stageDatabase moves the restored SQLite database (and the -wal and -shm
// files of suffixes) to staged, its configured place in the staged data
// folder.
func (r *Restored) stageDatabase(staged string, suffixes []string) error {
	if err := os.MkdirAll(filepath.Dir(staged), 0o700); err != nil {
		return fmt.Errorf("staging the restored database: %w", err)
	}
	for _, suffix := range suffixes {
		if err := moveFile(r.arch.entryPath(storeSQLite)+suffix, staged+suffix); err != nil {
			return fmt.Errorf("staging the restored database: %w", err)
		}
	}
	return nil
}

// setBackupConfigAside keeps the folder's own configuration: the
// backup's copy is dropped when identical, else written beside it as
// thiqa.yaml.from-backup (for comparison).
func (r *Restored) setBackupConfigAside(from string) error {
	staged := filepath.Join(from, r.o.ConfigFile)
	same, err := sameContent(staged, filepath.Join(r.o.Data, r.o.ConfigFile))
	if err != nil {
		return err
	}
	if same {
		return os.Remove(staged)
	}
	aside := r.o.ConfigFile + ".from-backup"
	r.notes = append(r.notes, fmt.Sprintf("the backup's configuration differs from the folder's: it is in %s for comparison", filepath.Join(r.o.Data, aside)))
	return os.Rename(staged, filepath.Join(from, aside))
}

// Report tells the operator what was restored and what to do next.
func (r *Restored) Report(w io.Writer) {
	m := &r.arch.manifest
	fmt.Fprintf(w, "restored the backup of %s (made on %s by thiqa %s) into %s\n", m.Created.Format(time.RFC3339), m.Host, m.Thiqa.Version, r.o.Data)
	if r.set.RootOffline {
		fmt.Fprintf(w, "  deployment   root CA SHA-256 %s (%s, offline); token %q holds the checkpoint key that signed the backup\n", r.rootSHA256, r.root.Subject.CommonName, r.set.Token)
	} else {
		fmt.Fprintf(w, "  deployment   root CA SHA-256 %s (%s); token %q holds its key\n", r.rootSHA256, r.root.Subject.CommonName, r.set.Token)
	}
	if r.set.OwnConfig {
		fmt.Fprintf(w, "  config       the folder's own %s was kept (the backup's copy was not written)\n", r.o.ConfigFile)
	}
	fmt.Fprintf(w, "  store        %s: audit chain OK, %d records restored; head now seq %d (the restore's own record)\n", r.set.Driver, r.records, r.head.Seq)
	for _, c := range r.raised {
		fmt.Fprintf(w, "  serials      %s %q raised from %d to %d: numbers handed out after the backup are never reused\n", c.Table, c.Name, c.From, c.To)
	}
	if r.cpStaged != "" {
		fmt.Fprintf(w, "  checkpoints  %s\n", r.split.describe(r.set.CheckpointFile))
	}
	for _, n := range r.notes {
		fmt.Fprintf(w, "  note         %s\n", n)
	}
	fmt.Fprintf(w, "  lost         what was issued after %s (certificates, time-stamps, signatures, revocations) is not in the store: re-revoke what was revoked since\n", m.Created.Format(time.RFC3339))
	fmt.Fprintf(w, "next: thiqa audit verify --data %s && thiqa serve --data %s\n", r.o.Data, r.o.Data)
}
