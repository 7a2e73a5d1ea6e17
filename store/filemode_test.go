package store_test

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/thiqa/thiqa/internal/audit"
	"github.com/thiqa/thiqa/store"
)

// The SQLite database and its WAL are readable by their owner only, even
// under a permissive umask.
func TestSQLiteFilesAreOwnerOnly(t *testing.T) {
	old := syscall.Umask(0o022)
	defer syscall.Umask(old)
	dir := t.TempDir()
	path := filepath.Join(dir, "thiqa.db")
	db, err := store.Open(context.Background(), store.Config{Driver: "sqlite", DSN: path}, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	log := audit.New(db, slog.New(slog.DiscardHandler), nil, audit.Options{})
	if _, err := log.Append(context.Background(), audit.Entry{Actor: "t", Action: "a", Object: "o", Outcome: "success"}); err != nil {
		t.Fatal(err)
	}
	log.Close()
	for _, f := range []string{path, path + "-wal"} {
		st, err := os.Stat(f)
		if err != nil {
			t.Fatal(err)
		}
		if mode := st.Mode().Perm(); mode != 0o600 {
			t.Errorf("%s has mode %o, want 600", filepath.Base(f), mode)
		}
	}
}
