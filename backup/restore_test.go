package backup_test

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/thiqa/thiqa/backup"
	"github.com/thiqa/thiqa/internal/audit"
	"github.com/thiqa/thiqa/store"
	"github.com/thiqa/thiqa/store/storetest"
)

// TestBackupAndRestore backs up a data folder and a real store (SQLite and
// PostgreSQL), goes on writing to the lost deployment, restores into a
// fresh folder and database, and checks what the procedure promises: the
// chain verifies with the restore recorded, the counters are raised, the
// checkpoints the restored chain lacks are archived, what was left out
// stays out, and a token of another deployment or a folder in use is
// refused with nothing changed.
func TestBackupAndRestore(t *testing.T) {
	for _, d := range storetest.Dialects() {
		t.Run(d.Name, func(t *testing.T) { backupAndRestore(t, d) })
	}
}

func backupAndRestore(t *testing.T, d storetest.Dialect) {
	ctx := context.Background()
	rootKey, cpKey := newKey(t), newKey(t)
	root := selfSigned(t, rootKey, "Test Root")
	sum := sha256.Sum256(root.Raw)
	rootSHA := hex.EncodeToString(sum[:])

	src := t.TempDir()
	writeTestFile(t, filepath.Join(src, "thiqa.yaml"), "listen: x\n")
	writeTestFile(t, filepath.Join(src, "ca", "root.pem"), string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: root.Raw})))
	pinFile := filepath.Join(src, "secrets", "pin")
	writeTestFile(t, pinFile, "1234\n")
	cpFile := filepath.Join(src, "audit", "checkpoints.jsonl")

	cfg := d.NewConfig(t)
	db := storetest.Open(t, cfg)
	log := audit.New(db, slog.New(slog.DiscardHandler), nil, audit.Options{})
	defer log.Close()
	if _, _, err := db.RecordDeployment(ctx, store.Deployment{RootSHA256: rootSHA}); err != nil {
		t.Fatal(err)
	}
	record := func(n int) {
		for i := 0; i < n; i++ {
			if _, err := log.Append(ctx, audit.Entry{Actor: "test", Action: "test.act", Object: fmt.Sprint(i), Outcome: audit.OutcomeSuccess}); err != nil {
				t.Fatal(err)
			}
		}
		w, err := audit.NewCheckpointWriter(db, cpKey, cpFile, audit.CheckpointWriterOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if _, _, err := w.Checkpoint(ctx); err != nil {
			t.Fatal(err)
		}
	}
	record(3)

	out := filepath.Join(t.TempDir(), "backup.tar.gz")
	m, err := backup.Create(ctx, backup.Options{
		Data: src, Out: out, ExcludeFiles: map[string]string{pinFile: "a PIN"}, CheckpointFile: cpFile,
		Named:  map[string]string{"elsewhere": "/nowhere/file"},
		Driver: d.Name, Database: testDB{db, cfg.DSN}, Signer: cpKey, Audit: log, Actor: "test",
		Deployment: backup.Deployment{RootSHA256: rootSHA, RootSubject: root.Subject.String()}, Token: "test",
	})
	if err != nil {
		t.Fatal(err)
	}
	if m.Audit.Seq != 3 || len(m.Files) != 4 || len(m.Excluded) != 2 || !strings.Contains(m.Excluded[1], "secrets/pin: a PIN") {
		t.Fatalf("manifest: audit %+v, %d files, excluded %q", m.Audit, len(m.Files), m.Excluded)
	}
	if err := backup.CheckOut(src, out); err == nil {
		t.Fatal("CheckOut accepts an archive that exists")
	}
	record(2) // the lost deployment went on after the backup

	// Another deployment's token: refused, nothing created.
	dst := filepath.Join(t.TempDir(), "restored")
	host := &testHost{data: dst, cfg: d.NewConfig(t), cp: cpKey, keys: map[string]crypto.Signer{"root": newKey(t)}}
	_, err = backup.Restore(ctx, backup.RestoreOptions{Archive: out, Data: dst, ConfigFile: "thiqa.yaml", Host: host, Actor: "test"})
	if !errors.Is(err, backup.ErrOtherDeployment) {
		t.Fatalf("another token: %v", err)
	}
	if _, err := os.Stat(dst); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("a refused restore left %s behind", dst)
	}

	host.keys["root"] = rootKey
	r, err := backup.Restore(ctx, backup.RestoreOptions{Archive: out, Data: dst, Checkpoints: cpFile, ConfigFile: "thiqa.yaml", Host: host, Actor: "test"})
	if err != nil {
		t.Fatal(err)
	}
	var rep bytes.Buffer
	r.Report(&rep)
	for _, want := range []string{
		"audit chain OK, 3 records restored; head now seq 4",
		`crl_numbers "root" raised from 0 to `,
		"1 kept in " + filepath.Join(dst, "audit", "checkpoints.jsonl") + "; 1 name records the restored chain lacks (seq 6 to 6",
	} {
		if !strings.Contains(rep.String(), want) {
			t.Errorf("the report lacks %q:\n%s", want, rep.String())
		}
	}
	if _, err := os.Stat(filepath.Join(dst, "ca", "root.pem")); err != nil {
		t.Errorf("root certificate not restored: %v", err)
	}
	if _, err := os.Stat(filepath.Join(dst, "secrets", "pin")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("an excluded file was restored: %v", err)
	}

	// The restored folder is a folder in use now: a second restore into it is refused.
	_, err = backup.Restore(ctx, backup.RestoreOptions{Archive: out, Data: dst, ConfigFile: "thiqa.yaml", Host: host, Actor: "test"})
	if !errors.Is(err, backup.ErrTargetNotEmpty) {
		t.Fatalf("a second restore into the same folder: %v", err)
	}
	release, err := backup.LockFolder(dst, false)
	if err != nil {
		t.Fatal(err)
	}
	defer release()
	if _, err := backup.LockFolder(dst, true); !errors.Is(err, backup.ErrFolderInUse) {
		t.Fatalf("an exclusive lock beside a shared one: %v", err)
	}
}

// TestRestoreIntoAnExistingFolderStagesInside restores into the shape the
// Debian package leaves: an existing, empty data folder that the service
// user owns inside a parent it cannot write to (/var/lib/thiqa in
// /var/lib). The restore stages the archive inside the folder, so nothing
// is written next to it; staging next to it failed with "permission
// denied" as the thiqa user.
func TestRestoreIntoAnExistingFolderStagesInside(t *testing.T) {
	ctx := context.Background()
	src := newSource(t, storetest.Dialects()[0]) // SQLite: the staged copy is the database
	rootKey, cpKey, d := src.rootKey, src.cpKey, src.d
	if _, err := src.log.Append(ctx, audit.Entry{Actor: "test", Action: "test.act", Object: "1", Outcome: audit.OutcomeSuccess}); err != nil {
		t.Fatal(err)
	}
	out := src.backUp(t)

	parent := t.TempDir()
	dst := filepath.Join(parent, "thiqa")
	if err := os.Mkdir(dst, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(parent, 0o555); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.Chmod(parent, 0o755) })
	host := &testHost{data: dst, cfg: d.NewConfig(t), cp: cpKey, keys: map[string]crypto.Signer{"root": rootKey}}
	if _, err := backup.Restore(ctx, backup.RestoreOptions{Archive: out, Data: dst, ConfigFile: "thiqa.yaml", Host: host, Actor: "test"}); err != nil {
		t.Fatal(err)
	}
	if len(host.sqliteCopies) == 0 {
		t.Fatal("the restore never opened the staged SQLite copy")
	}
	for _, p := range host.sqliteCopies {
		if rel, err := filepath.Rel(dst, p); err != nil || strings.HasPrefix(rel, "..") {
			t.Errorf("staged in %s, outside the data folder %s", p, dst)
		}
	}
	if entries, err := os.ReadDir(parent); err != nil || len(entries) != 1 {
		t.Errorf("the parent folder holds %v (%v), want the data folder alone", entries, err)
	}
	entries, err := os.ReadDir(dst)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), ".") {
			t.Errorf("the staging folder %s was left in the data folder", e.Name())
		}
	}
	if _, err := os.Stat(filepath.Join(dst, "ca", "root.pem")); err != nil {
		t.Errorf("root certificate not restored: %v", err)
	}
}

func newKey(t *testing.T) *ecdsa.PrivateKey {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func selfSigned(t *testing.T, k *ecdsa.PrivateKey, cn string) *x509.Certificate {
	t.Helper()
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: cn}, NotBefore: time.Now().Add(-time.Hour),
		NotAfter: time.Now().Add(time.Hour), IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageCRLSign}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, k.Public(), k)
	if err != nil {
		t.Fatal(err)
	}
	c, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func writeTestFile(t *testing.T, p, body string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
}

// testDB is a store being backed up.
type testDB struct {
	*store.DB
	dsn string
}

func (d testDB) DumpPostgres(ctx context.Context, w io.Writer) error {
	return store.DumpPostgres(ctx, d.dsn, w)
}

// testHost restores onto a fresh database with keys held in memory.
type testHost struct {
	data string
	cfg  store.Config
	cp   crypto.Signer
	keys map[string]crypto.Signer
	// cpFile is the configured checkpoint file; "" for audit/checkpoints.jsonl
	// in the data folder.
	cpFile string
	// sqliteCopies records where OpenStore was asked to open the staged
	// SQLite copy.
	sqliteCopies []string
	// offline configures an offline root: no root name, no root key.
	offline bool
}

func (h *testHost) Configure(backupConfig string) (backup.Settings, error) {
	if _, err := os.Stat(backupConfig); err != nil {
		return backup.Settings{}, fmt.Errorf("%w: no configuration", backup.ErrCorrupt)
	}
	s := backup.Settings{CA: true, RootCertificate: filepath.Join(h.data, "ca", "root.pem"), RootCommonName: "Test Root", RootKeyLabel: "root",
		Token: "test", Driver: h.cfg.Driver, CheckpointFile: filepath.Join(h.data, "audit", "checkpoints.jsonl"), CRLIssuers: []string{"root"}}
	if h.cpFile != "" {
		s.CheckpointFile = h.cpFile
	}
	if h.offline {
		s.RootOffline, s.RootCommonName, s.RootKeyLabel = true, "", ""
	}
	if s.Driver == backup.DriverSQLite {
		s.SQLiteFile = h.cfg.DSN
	}
	return s, nil
}

func (h *testHost) OpenToken(context.Context, string) (backup.Keys, error) {
	return h, nil
}

func (h *testHost) PublicKey(_ context.Context, label string) (crypto.PublicKey, error) {
	if k, ok := h.keys[label]; ok {
		return k.Public(), nil
	}
	return nil, backup.ErrKeyNotFound
}

func (h *testHost) CheckpointKey(context.Context) (crypto.Signer, error) { return h.cp, nil }
func (h *testHost) Close() error                                         { return nil }

func (h *testHost) InspectPostgres(ctx context.Context) (backup.PostgresState, error) {
	st, err := store.InspectPostgres(ctx, h.cfg.DSN)
	return st.Backup(), err
}

func (h *testHost) LoadPostgres(ctx context.Context, dump io.Reader) error {
	return store.RestorePostgres(ctx, h.cfg.DSN, dump)
}

func (h *testHost) OpenStore(ctx context.Context, sqliteCopy string) (backup.RestoredStore, error) {
	cfg := h.cfg
	if sqliteCopy != "" {
		cfg.DSN = sqliteCopy
		h.sqliteCopies = append(h.sqliteCopies, sqliteCopy)
	}
	db, err := store.Open(ctx, cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		return nil, err
	}
	return store.NewRestored(db, audit.New(db, slog.New(slog.DiscardHandler), nil, audit.Options{})), nil
}
