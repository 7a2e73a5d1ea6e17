package main

import (
	"database/sql"
	"path/filepath"
	"strings"
	"testing"

	"github.com/thiqa/thiqa/internal/testenv"
)

// pgFolder initialises a data folder whose store is the PostgreSQL
// database named by THIQA_TEST_DSN, and returns it.
func pgFolder(t *testing.T, dsn string) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "data")
	conf := editedConfig(t, dir, func(y string) string {
		return strings.Replace(y, "driver: sqlite\n  dsn: thiqa.db\n  dsnEnv: \"\"", "driver: postgres\n  dsn: \"\"\n  dsnEnv: THIQA_TEST_DSN", 1)
	})
	mustThiqa(t, []string{"THIQA_TEST_DSN=" + dsn}, "init", "--data", dir, "--config", conf)
	return dir
}

// auditRows counts a PostgreSQL store's audit records.
func auditRows(t *testing.T, dsn string) int {
	t.Helper()
	db, err := sql.Open("pgx", dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var n int
	if err := db.QueryRow("SELECT count(*) FROM audit_log").Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// TestNodeRefusesAnotherDeploymentsStore starts cluster nodes with a
// mismatched configuration: a data folder of deployment B against
// deployment A's database, and against an empty database. Each is refused
// with one clear line before anything is served or recorded.
func TestNodeRefusesAnotherDeploymentsStore(t *testing.T) {
	dsnA, dsnB, empty := testenv.PostgresDSN(t), testenv.PostgresDSN(t), testenv.PostgresDSN(t)
	a := pgFolder(t, dsnA)
	b := pgFolder(t, dsnB)
	envA := []string{"THIQA_TEST_DSN=" + dsnA}

	// The right pairing serves.
	srv := startServer(t, a, envA)
	srv.stop(t)
	recordsA := auditRows(t, dsnA)

	for _, tc := range []struct {
		name, dir, dsn, want string
	}{
		{"B's folder (another root) on A's store", b, dsnA, "belong to different deployments"},
		{"A's folder on B's store (another store)", a, dsnB, "belong to different deployments"},
		{"A's folder on an empty database", a, empty, "the store is empty"},
	} {
		before := folderSums(t, tc.dir)
		beforeRecords := 0
		if tc.dsn != empty {
			beforeRecords = auditRows(t, tc.dsn)
		}
		env := []string{"THIQA_TEST_DSN=" + tc.dsn}
		r := thiqa(t, env, "serve", "--data", tc.dir, "--addr", "127.0.0.1:0")
		if r.code != 1 || !strings.Contains(errorLine(t, r), tc.want) {
			t.Fatalf("%s: exit %d, want 1 and %q:\n%s", tc.name, r.code, tc.want, r.stderr)
		}
		if after := folderSums(t, tc.dir); !mapsEqual(before, after) {
			t.Fatalf("%s: the data folder changed: %v", tc.name, changedFiles(before, after))
		}
		if got := auditRows(t, tc.dsn); got != beforeRecords {
			t.Fatalf("%s: the store got %d audit records, had %d", tc.name, got, beforeRecords)
		}
	}
	// thiqa init of B's folder against A's store is refused too, and A's
	// store keeps its identity.
	r := thiqa(t, envA, "init", "--data", b)
	if r.code == 0 || !strings.Contains(errorLine(t, r), "belong to different deployments") {
		t.Fatalf("init of another deployment's folder on A's store: exit %d\n%s", r.code, r.stderr)
	}
	if got := auditRows(t, dsnA); got != recordsA {
		t.Fatalf("A's store got %d audit records, had %d", got, recordsA)
	}
	srv = startServer(t, a, envA)
	srv.stop(t)
}
