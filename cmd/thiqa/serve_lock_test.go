package main

import (
	"context"
	"database/sql"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/thiqa/thiqa/backup"
	"github.com/thiqa/thiqa/store"
)

// TestServeRefusesACompactingFolderAtOnce: a server started while `thiqa
// audit compact` holds the data folder (its exclusive lock, VACUUM holding
// the database's write lock) is refused at once, naming the compaction.
// It opened the token and the store first and took the folder's lock
// only then: the store's migrations waited out the busy timeout behind
// VACUUM and it failed with "database is locked".
func TestServeRefusesACompactingFolderAtOnce(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	initData(t, dir)
	release, err := backup.LockFolder(dir, true)
	if err != nil {
		t.Fatal(err)
	}
	defer release()
	ctx := context.Background()
	db, err := sql.Open("sqlite", "file:"+filepath.Join(dir, store.DefaultSQLiteFile))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	conn, err := db.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := conn.ExecContext(ctx, "BEGIN IMMEDIATE"); err != nil {
		t.Fatal(err)
	}
	defer func() { _, _ = conn.ExecContext(ctx, "ROLLBACK") }()

	start := time.Now()
	r := thiqa(t, nil, "serve", "--data", dir, "--addr", "127.0.0.1:0")
	took := time.Since(start)
	if line := errorLine(t, r); r.code == 0 || !strings.Contains(line, "thiqa audit compact") || took > 8*time.Second {
		t.Fatalf("serve beside a compaction: exit %d after %s, %q\n%s", r.code, took.Round(time.Millisecond), line, r.stderr)
	}
}
