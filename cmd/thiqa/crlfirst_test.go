package main

import (
	"database/sql"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/thiqa/thiqa/internal/testenv"
)

// TestFirstCRLWhileAnotherNodeSigns (PostgreSQL): a node starts while
// another holds the citizen CA's CRL lock (it is signing), so this node's
// first CRL of that CA comes only once the lock is free. The node listens,
// and writes its ready file, before that: a relying party that asked for
// /crl/citizen.crl then got 404, as TestIssueRefusedWhenRootCRLUnknown/
// postgres did once under load (its first CRLs slow to sign). Now the
// request waits for the node's first publication and gets the CRL.
func TestFirstCRLWhileAnotherNodeSigns(t *testing.T) {
	dir, env, tx := holdCRLLockOnPostgres(t)
	srv := startServer(t, dir, env)
	release := time.AfterFunc(2*time.Second, func() { _ = tx.Rollback() })
	defer release.Stop()
	start := time.Now()
	code, hdr, body := srv.get(t, "/crl/citizen.crl", "")
	if code != http.StatusOK || hdr.Get("Content-Type") != "application/pkix-crl" {
		t.Fatalf("GET /crl/citizen.crl while the first CRL is being signed: %d %s after %v, want 200 and the CRL", code, body, time.Since(start))
	}
}

// TestFirstCRLWaitDoesNotHoldShutdown (PostgreSQL): a CRL request waiting
// for the node's first publication (another node holds the lock) held
// the node's shutdown for its whole wait (10 s): the server waits for the
// requests in flight before it stops the publication. Now the request is
// answered 503 as the shutdown begins, and the node stops at once.
func TestFirstCRLWaitDoesNotHoldShutdown(t *testing.T) {
	dir, env, _ := holdCRLLockOnPostgres(t)
	srv := startServer(t, dir, env)
	got := make(chan int, 1)
	go func() {
		resp, err := http.Get(srv.base + "/crl/citizen.crl")
		if err != nil {
			got <- 0
			return
		}
		resp.Body.Close()
		got <- resp.StatusCode
	}()
	time.Sleep(time.Second) // the request waits for the first publication
	start := time.Now()
	srv.stop(t)
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("thiqa serve took %v to stop with a CRL request waiting, want at once", d)
	}
	if code := <-got; code != http.StatusServiceUnavailable {
		t.Fatalf("the waiting CRL request: %d, want 503", code)
	}
}

// holdCRLLockOnPostgres initialises a PostgreSQL data directory and takes
// the citizen CA's CRL lock (store.DB.Exclusive, "crl:citizen") as another
// node signing would, until tx ends (at the latest when the test does).
func holdCRLLockOnPostgres(t *testing.T) (dir string, env []string, tx *sql.Tx) {
	t.Helper()
	dir = filepath.Join(t.TempDir(), "data")
	dsn := testenv.PostgresDSN(t)
	env = []string{"THIQA_TEST_DSN=" + dsn}
	conf := editedConfig(t, dir, func(y string) string {
		return strings.Replace(y, "driver: sqlite\n  dsn: thiqa.db\n  dsnEnv: \"\"", "driver: postgres\n  dsn: \"\"\n  dsnEnv: THIQA_TEST_DSN", 1)
	})
	mustThiqa(t, env, "init", "--data", dir, "--config", conf)
	db, err := sql.Open("pgx", dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	tx, err = db.BeginTx(t.Context(), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = tx.Rollback() })
	if _, err := tx.ExecContext(t.Context(), "SELECT pg_advisory_xact_lock($1, hashtext($2))", int32(0x74686971), "crl:citizen"); err != nil {
		t.Fatal(err)
	}
	return dir, env, tx
}
