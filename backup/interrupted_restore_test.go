package backup_test

import (
	"context"
	"crypto"
	"crypto/sha256"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/thiqa/thiqa/backup"
	"github.com/thiqa/thiqa/internal/audit"
	"github.com/thiqa/thiqa/store"
	"github.com/thiqa/thiqa/store/storetest"
)

// TestRestoreAfterAnInterruptedOne: a restore into an existing data
// folder killed before it moved the files into place leaves its staging
// folder (.restore-*) in the folder, with a copy of the backup's data and
// database. The run again owns the folder (its exclusive lock refuses a
// restore or a serve beside it): it removes what the interrupted restore
// left and restores, where it refused the folder as not empty.
func TestRestoreAfterAnInterruptedOne(t *testing.T) {
	ctx := context.Background()
	rootKey, cpKey := newKey(t), newKey(t)
	root := selfSigned(t, rootKey, "Test Root")
	sum := sha256.Sum256(root.Raw)
	rootSHA := hex.EncodeToString(sum[:])

	src := t.TempDir()
	writeTestFile(t, filepath.Join(src, "thiqa.yaml"), "listen: x\n")
	writeTestFile(t, filepath.Join(src, "ca", "root.pem"), string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: root.Raw})))
	d := storetest.Dialects()[0]
	cfg := d.NewConfig(t)
	db := storetest.Open(t, cfg)
	log := audit.New(db, slog.New(slog.DiscardHandler), nil, audit.Options{})
	defer log.Close()
	if _, _, err := db.RecordDeployment(ctx, store.Deployment{RootSHA256: rootSHA}); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(t.TempDir(), "backup.tar.gz")
	if _, err := backup.Create(ctx, backup.Options{
		Data: src, Out: out, CheckpointFile: filepath.Join(src, "audit", "checkpoints.jsonl"),
		Driver: d.Name, Database: testDB{db, cfg.DSN}, Signer: cpKey, Audit: log, Actor: "test",
		Deployment: backup.Deployment{RootSHA256: rootSHA, RootSubject: root.Subject.String()}, Token: "test",
	}); err != nil {
		t.Fatal(err)
	}

	dst := filepath.Join(t.TempDir(), "thiqa")
	writeTestFile(t, filepath.Join(dst, ".restore-123456", "data", "ca", "root.pem"), "a copy of the backup")
	writeTestFile(t, filepath.Join(dst, ".restore-123456", "store", "thiqa.db"), "a copy of the database")
	host := &testHost{data: dst, cfg: d.NewConfig(t), cp: cpKey, keys: map[string]crypto.Signer{"root": rootKey}}
	if _, err := backup.Restore(ctx, backup.RestoreOptions{Archive: out, Data: dst, ConfigFile: "thiqa.yaml", Host: host, Actor: "test"}); err != nil {
		t.Fatalf("a restore after an interrupted one: %v", err)
	}
	entries, err := os.ReadDir(dst)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), ".") {
			t.Errorf("%s was left in the data folder", e.Name())
		}
	}
	if raw, err := os.ReadFile(filepath.Join(dst, "ca", "root.pem")); err != nil || !strings.Contains(string(raw), "BEGIN CERTIFICATE") {
		t.Errorf("root certificate not restored: %v", err)
	}
}

// TestRestoreOntoADatabaseAnInterruptedRestoreLoaded: a PostgreSQL restore
// killed after it loaded the dump leaves the configured database holding
// the backup's deployment. The run again refuses it, as it refuses any
// database in use, and says what to do when it is not a live one.
func TestRestoreOntoADatabaseAnInterruptedRestoreLoaded(t *testing.T) {
	ctx := context.Background()
	d := storetest.Dialects()[1]
	rootKey, cpKey := newKey(t), newKey(t)
	root := selfSigned(t, rootKey, "Test Root")
	sum := sha256.Sum256(root.Raw)
	rootSHA := hex.EncodeToString(sum[:])

	src := t.TempDir()
	writeTestFile(t, filepath.Join(src, "thiqa.yaml"), "listen: x\n")
	writeTestFile(t, filepath.Join(src, "ca", "root.pem"), string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: root.Raw})))
	cfg := d.NewConfig(t)
	db := storetest.Open(t, cfg)
	log := audit.New(db, slog.New(slog.DiscardHandler), nil, audit.Options{})
	defer log.Close()
	if _, _, err := db.RecordDeployment(ctx, store.Deployment{RootSHA256: rootSHA}); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(t.TempDir(), "backup.tar.gz")
	if _, err := backup.Create(ctx, backup.Options{
		Data: src, Out: out, CheckpointFile: filepath.Join(src, "audit", "checkpoints.jsonl"),
		Driver: d.Name, Database: testDB{db, cfg.DSN}, Signer: cpKey, Audit: log, Actor: "test",
		Deployment: backup.Deployment{RootSHA256: rootSHA, RootSubject: root.Subject.String()}, Token: "test",
	}); err != nil {
		t.Fatal(err)
	}
	var dump strings.Builder
	if err := store.DumpPostgres(ctx, cfg.DSN, &dump); err != nil {
		t.Fatal(err)
	}

	// What the interrupted restore left: the dump loaded into the target database.
	host := &testHost{data: filepath.Join(t.TempDir(), "thiqa"), cfg: d.NewConfig(t), cp: cpKey, keys: map[string]crypto.Signer{"root": rootKey}}
	if err := host.LoadPostgres(ctx, strings.NewReader(dump.String())); err != nil {
		t.Fatal(err)
	}
	_, err := backup.Restore(ctx, backup.RestoreOptions{Archive: out, Data: host.data, ConfigFile: "thiqa.yaml", Host: host, Actor: "test"})
	if !errors.Is(err, backup.ErrTargetNotEmpty) || !strings.Contains(err.Error(), "an interrupted restore") || !strings.Contains(err.Error(), "drop and recreate it") {
		t.Fatalf("a restore onto the database an interrupted restore loaded: %v", err)
	}
}
