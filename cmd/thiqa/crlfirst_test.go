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
	dir := filepath.Join(t.TempDir(), "data")
	dsn := testenv.PostgresDSN(t)
	env := []string{"THIQA_TEST_DSN=" + dsn}
	conf := editedConfig(t, dir, func(y string) string {
		return strings.Replace(y, "driver: sqlite\n  dsn: thiqa.db\n  dsnEnv: \"\"", "driver: postgres\n  dsn: \"\"\n  dsnEnv: THIQA_TEST_DSN", 1)
	})
	mustThiqa(t, env, "init", "--data", dir, "--config", conf)

	// The other node: the citizen CA's lock (store.DB.Exclusive, "crl:citizen").
	db, err := sql.Open("pgx", dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	tx, err := db.BeginTx(t.Context(), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = tx.Rollback() }()
	if _, err := tx.ExecContext(t.Context(), "SELECT pg_advisory_xact_lock($1, hashtext($2))", int32(0x74686971), "crl:citizen"); err != nil {
		t.Fatal(err)
	}
	srv := startServer(t, dir, env)
	release := time.AfterFunc(2*time.Second, func() { _ = tx.Rollback() })
	defer release.Stop()
	start := time.Now()
	code, hdr, body := srv.get(t, "/crl/citizen.crl", "")
	if code != http.StatusOK || hdr.Get("Content-Type") != "application/pkix-crl" {
		t.Fatalf("GET /crl/citizen.crl while the first CRL is being signed: %d %s after %v, want 200 and the CRL", code, body, time.Since(start))
	}
}
