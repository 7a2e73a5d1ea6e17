package backup_test

import (
	"context"
	"crypto"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/thiqa/thiqa/backup"
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
	src := newSource(t, storetest.Dialects()[0])
	rootKey, cpKey, d := src.rootKey, src.cpKey, src.d
	out := src.backUp(t)

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
	src := newSource(t, storetest.Dialects()[1])
	rootKey, cpKey, d, cfg := src.rootKey, src.cpKey, src.d, src.cfg
	out := src.backUp(t)
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

// TestRestoreIntoANewFolderBringsTheDatabaseWithIt: a restore into a new
// data folder renamed the staged folder into place and only then moved
// the SQLite database into it, so a kill in between left the folder
// without its database (a run again refused it as not empty) and the
// database copy next to it. A database inside the data folder now goes
// into the staged folder before the rename: when moving it fails (here a
// file stands where its folder would be; a kill there is the same) the
// data folder does not exist yet, and a run again starts afresh.
func TestRestoreIntoANewFolderBringsTheDatabaseWithIt(t *testing.T) {
	ctx := context.Background()
	src := newSource(t, storetest.Dialects()[0])
	rootKey, cpKey := src.rootKey, src.cpKey
	writeTestFile(t, filepath.Join(src.dir, "db"), "a file where a database folder is configured")
	out := src.backUp(t)

	parent := t.TempDir()
	dst := filepath.Join(parent, "thiqa")
	host := &testHost{data: dst, cfg: store.Config{Driver: store.DriverSQLite, DSN: filepath.Join(dst, "db", "thiqa.db")},
		cp: cpKey, keys: map[string]crypto.Signer{"root": rootKey}}
	if _, err := backup.Restore(ctx, backup.RestoreOptions{Archive: out, Data: dst, ConfigFile: "thiqa.yaml", Host: host, Actor: "test"}); err == nil {
		t.Fatal("a restore whose database cannot be moved into place succeeded")
	}
	if _, err := os.Lstat(dst); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("moving the database failed, and the data folder is in place without it: %v", err)
	}

	// The database in its default place, thiqa.db in the data folder: it
	// is there, and nothing is left next to the folder.
	host.cfg.DSN = filepath.Join(dst, "thiqa.db")
	if _, err := backup.Restore(ctx, backup.RestoreOptions{Archive: out, Data: dst, ConfigFile: "thiqa.yaml", Host: host, Actor: "test"}); err != nil {
		t.Fatalf("the run again: %v", err)
	}
	if _, err := os.Stat(filepath.Join(dst, "thiqa.db")); err != nil {
		t.Errorf("the database was not restored: %v", err)
	}
	entries, err := os.ReadDir(parent)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if e.Name() != "thiqa" {
			t.Errorf("%s was left next to the data folder", e.Name())
		}
	}
}
