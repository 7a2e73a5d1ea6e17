package store_test

import (
	"bytes"
	"context"
	"database/sql"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/thiqa/thiqa/internal/audit"
	"github.com/thiqa/thiqa/store"
	"github.com/thiqa/thiqa/store/storetest"
)

// logBuffer collects a store's log lines for a test.
type logBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func (l *logBuffer) logger() *slog.Logger {
	return slog.New(slog.NewTextHandler(l, &slog.HandlerOptions{Level: slog.LevelInfo}))
}

// postgresDialect returns the PostgreSQL dialect of storetest.
func postgresDialect(t testing.TB) storetest.Dialect {
	t.Helper()
	for _, d := range storetest.Dialects() {
		if d.Name == store.DriverPostgres {
			return d
		}
	}
	t.Fatal("no postgres dialect")
	return storetest.Dialect{}
}

// before0030 opens a fresh PostgreSQL store and puts it back in the state a
// release before migration 0030 left: no audit_log_action, 0030 not
// recorded. It returns the store and a plain connection pool to it.
func before0030(t *testing.T) (store.Config, *store.DB, *sql.DB) {
	t.Helper()
	ctx := ctxT(t)
	cfg := postgresDialect(t).NewConfig(t)
	db := storetest.Open(t, cfg)
	if err := db.ExecTx(ctx, "DROP INDEX audit_log_action"); err != nil {
		t.Fatal(err)
	}
	if err := db.ExecTx(ctx, "DELETE FROM schema_migrations WHERE version = '0030_audit_action'"); err != nil {
		t.Fatal(err)
	}
	raw, err := sql.Open("pgx", cfg.DSN)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = raw.Close() })
	return cfg, db, raw
}

// holdBuild opens a transaction holding ROW EXCLUSIVE on audit_log (what
// an append in progress holds), which any index build on audit_log waits
// for: the build stays in progress until release is called.
func holdBuild(t *testing.T, raw *sql.DB) (release func()) {
	t.Helper()
	tx, err := raw.BeginTx(ctxT(t), nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tx.Exec("LOCK TABLE audit_log IN ROW EXCLUSIVE MODE"); err != nil {
		t.Fatal(err)
	}
	var once sync.Once
	release = func() { once.Do(func() { _ = tx.Rollback() }) }
	t.Cleanup(release)
	return release
}

// waitBuildWaiting waits until a backend runs a CREATE INDEX of
// audit_log_action and waits for a lock (the held build).
func waitBuildWaiting(t *testing.T, raw *sql.DB, opened <-chan error) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		var n int
		err := raw.QueryRow(`SELECT count(*) FROM pg_stat_activity
	WHERE datname = current_database() AND pid <> pg_backend_pid() AND query LIKE '%CREATE INDEX%audit_log_action%' AND wait_event_type = 'Lock'`).Scan(&n)
		if err != nil {
			t.Fatal(err)
		}
		if n > 0 {
			return
		}
		select {
		case err := <-opened:
			t.Fatalf("the store opened (%v) before its index build was seen waiting", err)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatal("no index build of audit_log_action seen within 30 s")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// openAsync opens cfg in a goroutine (the node that starts after the
// upgrade); the channel receives Open's error.
func openAsync(t *testing.T, cfg store.Config, logs *logBuffer) <-chan error {
	t.Helper()
	done := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		db, err := store.Open(ctx, cfg, logs.logger())
		if err == nil {
			_ = db.Close()
		}
		done <- err
	}()
	return done
}

// checkIndexValid checks audit_log_action exists, valid, and 0030 is
// recorded once.
func checkIndexValid(t *testing.T, raw *sql.DB) {
	t.Helper()
	var valid bool
	if err := raw.QueryRow("SELECT indisvalid FROM pg_index WHERE indexrelid = 'audit_log_action'::regclass").Scan(&valid); err != nil || !valid {
		t.Fatalf("audit_log_action valid: %v, %v", valid, err)
	}
	var n int
	if err := raw.QueryRow("SELECT count(*) FROM schema_migrations WHERE version = '0030_audit_action'").Scan(&n); err != nil || n != 1 {
		t.Fatalf("0030 recorded %d times, %v", n, err)
	}
}

// TestIndexMigrationLetsAppendsIn: while migration 0030 builds its index
// on PostgreSQL (held in progress by a transaction writing to audit_log),
// an audit append from another connection completes: the build takes
// SHARE UPDATE EXCLUSIVE (CREATE INDEX CONCURRENTLY), not SHARE, which
// would queue every append behind it until the build ends.
func TestIndexMigrationLetsAppendsIn(t *testing.T) {
	cfg, db, raw := before0030(t)
	release := holdBuild(t, raw)
	var logs logBuffer
	opened := openAsync(t, cfg, &logs)
	waitBuildWaiting(t, raw, opened)

	var modes []string
	rows, err := raw.Query(`SELECT l.mode FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid
	WHERE a.pid <> pg_backend_pid() AND a.query LIKE '%CREATE INDEX%audit_log_action%' AND l.relation = 'audit_log'::regclass`)
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var m string
		if err := rows.Scan(&m); err != nil {
			t.Fatal(err)
		}
		modes = append(modes, m)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	if len(modes) != 1 || modes[0] != "ShareUpdateExclusiveLock" {
		t.Errorf("the build's locks on audit_log: %v, want [ShareUpdateExclusiveLock]", modes)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	t0 := time.Now()
	err = db.AppendAuditRecords(ctx, func(h audit.Head) ([]audit.Record, error) { return chain(h, 1), nil })
	if err != nil {
		t.Fatalf("an audit append during the index build: %v (after %s)", err, time.Since(t0).Round(time.Millisecond))
	}

	release()
	if err := <-opened; err != nil {
		t.Fatalf("Open during the upgrade: %v", err)
	}
	checkIndexValid(t, raw)
	for _, want := range []string{`msg="store: building index" version=0030_audit_action index=audit_log_action table=audit_log concurrently=true`,
		`msg="store: index built" version=0030_audit_action index=audit_log_action table=audit_log concurrently=true duration=`} {
		if !strings.Contains(logs.String(), want) {
			t.Errorf("log lacks %q:\n%s", want, logs.String())
		}
	}
}

// TestIndexMigrationRebuildsInvalidIndex: an index an interrupted
// concurrent build left INVALID is dropped and built again at the next
// start, and the migration recorded.
func TestIndexMigrationRebuildsInvalidIndex(t *testing.T) {
	ctx := ctxT(t)
	cfg := postgresDialect(t).NewConfig(t)
	db := storetest.Open(t, cfg)
	appendN(t, db, 3)
	if err := db.ExecTx(ctx, "DELETE FROM schema_migrations WHERE version = '0030_audit_action'"); err != nil {
		t.Fatal(err)
	}
	// What a build stopped half-way (a crash, a cancelled start) leaves.
	if err := db.ExecTx(ctx, "UPDATE pg_index SET indisvalid = false WHERE indexrelid = 'audit_log_action'::regclass"); err != nil {
		t.Fatal(err)
	}
	before, err := db.QueryInt64(ctx, "SELECT 'audit_log_action'::regclass::oid::bigint")
	if err != nil {
		t.Fatal(err)
	}
	db2, logs := openLogged(t, ctx, cfg, "Open after an interrupted build")
	after, err := db2.QueryInt64(ctx, "SELECT 'audit_log_action'::regclass::oid::bigint")
	if err != nil {
		t.Fatal(err)
	}
	if after == before {
		t.Error("the invalid index was kept, not built again")
	}
	raw, err := sql.Open("pgx", cfg.DSN)
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	checkIndexValid(t, raw)
	if !strings.Contains(logs.String(), "dropping an invalid index") {
		t.Errorf("no log line about the invalid index:\n%s", logs.String())
	}
}

// TestIndexMigrationTwoNodes: two nodes starting at once after the
// upgrade: one builds the index (concurrently), the other waits without
// holding the snapshot the build would wait for, then finds the migration
// done; neither fails.
func TestIndexMigrationTwoNodes(t *testing.T) {
	cfg, _, raw := before0030(t)
	release := holdBuild(t, raw)
	var logs [2]logBuffer
	first := openAsync(t, cfg, &logs[0])
	waitBuildWaiting(t, raw, first)
	second := openAsync(t, cfg, &logs[1])
	deadline := time.Now().Add(30 * time.Second)
	for !strings.Contains(logs[1].String(), "waiting for another node's index build") {
		if time.Now().After(deadline) {
			t.Fatalf("the second node does not wait for the first's build:\n%s", logs[1].String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	release()
	for i, ch := range []<-chan error{first, second} {
		select {
		case err := <-ch:
			if err != nil {
				t.Fatalf("node %d: Open: %v", i+1, err)
			}
		case <-time.After(time.Minute):
			t.Fatalf("node %d: Open still running after a minute", i+1)
		}
	}
	checkIndexValid(t, raw)
	builds := 0
	for i := range logs {
		builds += strings.Count(logs[i].String(), `msg="store: building index" version=0030_audit_action`)
	}
	if builds != 1 {
		t.Errorf("%d builds of 0030's index, want 1:\n%s\n%s", builds, logs[0].String(), logs[1].String())
	}
}

// TestIndexMigrationPartitionedTable: when audit_log is partitioned (an
// operator's choice for a very large log), PostgreSQL cannot build its
// index concurrently: the plain build runs, says so in the log, and the
// index covers every partition.
func TestIndexMigrationPartitionedTable(t *testing.T) {
	ctx := ctxT(t)
	cfg, db, raw := before0030(t)
	for _, q := range []string{
		"ALTER TABLE audit_log RENAME TO audit_log_flat",
		"CREATE TABLE audit_log (LIKE audit_log_flat INCLUDING DEFAULTS INCLUDING CONSTRAINTS) PARTITION BY RANGE (seq)",
		"CREATE TABLE audit_log_p0 PARTITION OF audit_log FOR VALUES FROM (MINVALUE) TO (1000000)",
		"CREATE TABLE audit_log_p1 PARTITION OF audit_log FOR VALUES FROM (1000000) TO (MAXVALUE)",
	} {
		if err := db.ExecTx(ctx, q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	_, logs := openLogged(t, ctx, cfg, "Open with a partitioned audit_log")
	checkIndexValid(t, raw)
	var parts int
	if err := raw.QueryRow(`SELECT count(*) FROM pg_inherits WHERE inhparent = 'audit_log_action'::regclass`).Scan(&parts); err != nil || parts != 2 {
		t.Fatalf("partitions of audit_log_action: %d, %v; want 2", parts, err)
	}
	for _, want := range []string{"table is partitioned, PostgreSQL cannot build its index concurrently",
		`msg="store: index built" version=0030_audit_action index=audit_log_action table=audit_log concurrently=false`} {
		if !strings.Contains(logs.String(), want) {
			t.Errorf("log lacks %q:\n%s", want, logs.String())
		}
	}
}

// TestIndexMigrationOutlivesSessionTimeouts: a statement_timeout and a
// lock_timeout set for queries (here in the DSN, as a role's setting would
// be) do not end the build, which waits longer than them for a transaction
// open on the table; the connection then goes back to the pool with them.
func TestIndexMigrationOutlivesSessionTimeouts(t *testing.T) {
	cfg, _, raw := before0030(t)
	sep := "?"
	if strings.Contains(cfg.DSN, "?") {
		sep = "&"
	}
	cfg.DSN += sep + "statement_timeout=500&lock_timeout=500"
	cfg.MaxOpenConns = 1 // the build's connection is the one queried after
	release := holdBuild(t, raw)
	type result struct {
		db  *store.DB
		err error
	}
	done := make(chan result, 1)
	var logs logBuffer
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		db, err := store.Open(ctx, cfg, logs.logger())
		done <- result{db, err}
	}()
	deadline := time.Now().Add(30 * time.Second)
	for n := 0; n == 0; {
		if err := raw.QueryRow(`SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()
	AND query LIKE '%CREATE INDEX%audit_log_action%' AND wait_event_type = 'Lock'`).Scan(&n); err != nil {
			t.Fatal(err)
		}
		select {
		case r := <-done:
			if r.db != nil {
				r.db.Close()
			}
			t.Fatalf("the store opened (%v) before its index build was seen waiting:\n%s", r.err, logs.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatal("no index build of audit_log_action seen within 30 s")
		}
		time.Sleep(20 * time.Millisecond)
	}
	time.Sleep(1500 * time.Millisecond) // three times the timeouts
	release()
	r := <-done
	if r.err != nil {
		t.Fatalf("Open with a 500 ms statement_timeout and lock_timeout: %v\n%s", r.err, logs.String())
	}
	defer r.db.Close()
	checkIndexValid(t, raw)
	ctx := ctxT(t)
	for _, name := range []string{"statement_timeout", "lock_timeout"} {
		ms, err := r.db.QueryInt64(ctx, "SELECT (extract(epoch FROM current_setting('"+name+"')::interval) * 1000)::bigint")
		if err != nil || ms != 500 {
			t.Errorf("%s after the build: %d ms, %v; want the DSN's 500", name, ms, err)
		}
	}
}

// openLogged opens the store of cfg again, its log kept in the returned
// buffer, failing the test with what when Open fails; the store is
// closed at the end of the test.
func openLogged(t *testing.T, ctx context.Context, cfg store.Config, what string) (*store.DB, *logBuffer) {
	t.Helper()
	logs := &logBuffer{}
	db, err := store.Open(ctx, cfg, logs.logger())
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
	t.Cleanup(func() { db.Close() })
	return db, logs
}
