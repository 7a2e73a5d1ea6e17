package store_test

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"errors"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/thiqa/thiqa/store"
	"github.com/thiqa/thiqa/store/storetest"
)

// migrationLockKey is store's migration lock ("thiqa-mi"), which releases
// before concurrent index builds take in every migration's transaction.
const migrationLockKey = 0x74686971612d6d69

// olderReleaseMigrates does what the migrate of a release before
// concurrent index builds does for 0030 on raw: in one transaction, under
// the migration lock, skip it when recorded, else build the index plainly
// and record it.
func olderReleaseMigrates(ctx context.Context, raw *sql.DB) error {
	tx, err := raw.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer func() { _ = tx.Rollback() }()
	if _, err := tx.ExecContext(ctx, "SELECT pg_advisory_xact_lock($1)", int64(migrationLockKey)); err != nil {
		return err
	}
	var sum string
	err = tx.QueryRowContext(ctx, "SELECT checksum FROM schema_migrations WHERE version = '0030_audit_action'").Scan(&sum)
	switch {
	case err == nil:
		return tx.Commit()
	case !errors.Is(err, sql.ErrNoRows):
		return err
	}
	if _, err := tx.ExecContext(ctx, "CREATE INDEX audit_log_action ON audit_log (action, seq)"); err != nil {
		return err
	}
	if _, err := tx.ExecContext(ctx, "INSERT INTO schema_migrations (version, checksum) VALUES ('0030_audit_action', 'x')"); err != nil {
		return err
	}
	return tx.Commit()
}

// TestIndexMigrationOlderReleaseMeanwhile: a node of the release before
// (plain build in the migration's transaction) starts while this release
// builds 0030's index concurrently, as in an upgrade node by node. Both
// start: the older one finds 0030 recorded and skips it. Were it not
// recorded yet, the older node's build would wait for the concurrent
// build's lock with a snapshot the concurrent build waits for: a deadlock
// PostgreSQL ends by failing the concurrent build, and the older node then
// finds the index name taken, so both fail.
func TestIndexMigrationOlderReleaseMeanwhile(t *testing.T) {
	cfg, _, raw := before0030(t)
	release := holdBuild(t, raw)
	var logs logBuffer
	opened := openAsync(t, cfg, &logs)
	waitBuildWaiting(t, raw, opened)
	older := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		older <- olderReleaseMigrates(ctx, raw)
	}()
	// The older node either finds 0030 recorded and ends, or (were it not
	// recorded) reaches its build and waits there for the concurrent
	// build's lock; only then does the concurrent build go on.
	var olderErr error
	olderDone := false
	deadline := time.Now().Add(30 * time.Second)
	for !olderDone {
		select {
		case olderErr = <-older:
			olderDone = true
			continue
		default:
		}
		var n int
		if err := raw.QueryRow(`SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()
	AND query LIKE 'CREATE INDEX audit_log_action%' AND wait_event_type = 'Lock'`).Scan(&n); err != nil {
			t.Fatal(err)
		}
		if n > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the older node neither ended nor waited within 30 s")
		}
		time.Sleep(20 * time.Millisecond)
	}
	release()
	if err := <-opened; err != nil {
		t.Errorf("this release's Open: %v", err)
	}
	if !olderDone {
		olderErr = <-older
	}
	if olderErr != nil {
		t.Errorf("the older release's migration: %v", olderErr)
	}
	checkIndexValid(t, raw)
}

// TestIndexMigrationTakesUpClaim: 0030 is recorded, applied_at
// '-infinity', when its build starts; a build stopped then (a crash)
// leaves that claim with an INVALID or no index: the next Open builds it
// and records the migration done.
func TestIndexMigrationTakesUpClaim(t *testing.T) {
	for _, tc := range []struct{ name, q string }{
		{"invalid", "UPDATE pg_index SET indisvalid = false WHERE indexrelid = 'audit_log_action'::regclass"},
		{"missing", "DROP INDEX audit_log_action"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := ctxT(t)
			cfg := postgresDialect(t).NewConfig(t)
			db := storetest.Open(t, cfg)
			for _, q := range []string{tc.q, "UPDATE schema_migrations SET applied_at = '-infinity' WHERE version = '0030_audit_action'"} {
				if err := db.ExecTx(ctx, q); err != nil {
					t.Fatal(err)
				}
			}
			_, logs := openLogged(t, ctx, cfg, "Open")
			raw, err := sql.Open("pgx", cfg.DSN)
			if err != nil {
				t.Fatal(err)
			}
			defer raw.Close()
			checkIndexValid(t, raw)
			if !strings.Contains(logs.String(), `msg="store: index built" version=0030_audit_action`) {
				t.Errorf("no build logged:\n%s", logs.String())
			}
			var claimed bool
			if err := raw.QueryRow("SELECT applied_at = '-infinity' FROM schema_migrations WHERE version = '0030_audit_action'").Scan(&claimed); err != nil || claimed {
				t.Errorf("0030 still claimed after its build: %v, %v", claimed, err)
			}
		})
	}
}

// TestIndexMigrationDoneUntouched: a migration done is not looked at
// again: its index dropped since (by a later migration, or by hand) is not
// built again, and Open builds nothing.
func TestIndexMigrationDoneUntouched(t *testing.T) {
	ctx := ctxT(t)
	cfg := postgresDialect(t).NewConfig(t)
	db := storetest.Open(t, cfg)
	if err := db.ExecTx(ctx, "DROP INDEX audit_log_action"); err != nil {
		t.Fatal(err)
	}
	db2, logs := openLogged(t, ctx, cfg, "Open")
	if n, err := db2.QueryInt64(ctx, "SELECT count(*) FROM pg_class WHERE relname = 'audit_log_action'"); err != nil || n != 0 {
		t.Errorf("audit_log_action rebuilt (%d, %v):\n%s", n, err, logs.String())
	}
	if strings.Contains(logs.String(), "index") {
		t.Errorf("Open of a migrated database logged:\n%s", logs.String())
	}
}

// TestIndexMigrationNameOnAnotherTable: an index named as 0030's but on
// another table (made by hand) is neither taken for 0030's index nor
// dropped: Open fails and says which table holds it.
func TestIndexMigrationNameOnAnotherTable(t *testing.T) {
	for _, valid := range []bool{true, false} {
		ctx := ctxT(t)
		cfg, db, raw := before0030(t)
		if err := db.ExecTx(ctx, "CREATE INDEX audit_log_action ON certificates (serial)"); err != nil {
			t.Fatal(err)
		}
		if !valid {
			if err := db.ExecTx(ctx, "UPDATE pg_index SET indisvalid = false WHERE indexrelid = 'audit_log_action'::regclass"); err != nil {
				t.Fatal(err)
			}
		}
		var logs logBuffer
		db2, err := store.Open(ctx, cfg, logs.logger())
		if err == nil {
			db2.Close()
			t.Fatalf("valid %v: Open took certificates' audit_log_action for 0030's index", valid)
		}
		if !strings.Contains(err.Error(), "exists on table certificates") {
			t.Errorf("valid %v: Open: %v", valid, err)
		}
		var table string
		if err := raw.QueryRow("SELECT indrelid::regclass::text FROM pg_index WHERE indexrelid = 'audit_log_action'::regclass").Scan(&table); err != nil || table != "certificates" {
			t.Errorf("valid %v: the hand-made index: %q, %v", valid, table, err)
		}
	}
}

// TestIndexMigrationAfterOlderReleaseBuild: this release starts while a
// node of the release before builds 0030's index in its transaction: it
// waits for that transaction (the migration lock), then finds the
// migration recorded and the index built, and builds nothing.
func TestIndexMigrationAfterOlderReleaseBuild(t *testing.T) {
	ctx := ctxT(t)
	cfg, _, raw := before0030(t)
	tx, err := raw.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = tx.Rollback() }()
	for _, q := range []string{
		"SELECT pg_advisory_xact_lock(" + strconv.FormatInt(migrationLockKey, 10) + ")",
		"CREATE INDEX audit_log_action ON audit_log (action, seq)",
		"INSERT INTO schema_migrations (version, checksum) SELECT '0030_audit_action', checksum FROM (VALUES ('" + checksum0030(t) + "')) c(checksum)",
	} {
		if _, err := tx.ExecContext(ctx, q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	var logs logBuffer
	opened := openAsync(t, cfg, &logs)
	deadline := time.Now().Add(30 * time.Second)
	// It waits either in its first transaction (the migration lock, taken
	// before any migration) or, had it passed that before the older node
	// began, for the same lock before recording 0030.
	for !strings.Contains(logs.String(), "waiting for another node's migration") && !advisoryWaiter(t, raw) {
		select {
		case err := <-opened:
			t.Fatalf("Open ended (%v) while the older node's migration was in progress:\n%s", err, logs.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("Open does not wait for the older node's migration:\n%s", logs.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
	if err := <-opened; err != nil {
		t.Fatalf("Open after the older node's build: %v", err)
	}
	checkIndexValid(t, raw)
	if strings.Contains(logs.String(), "building") {
		t.Errorf("built again:\n%s", logs.String())
	}
}

// checksum0030 is the hex SHA-256 of the PostgreSQL migration 0030.
func checksum0030(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile("migrations/postgres/0030_audit_action.sql")
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

// advisoryWaiter reports whether a backend other than raw's waits for an
// advisory lock.
func advisoryWaiter(t *testing.T, raw *sql.DB) bool {
	t.Helper()
	var n int
	if err := raw.QueryRow(`SELECT count(*) FROM pg_stat_activity
	WHERE datname = current_database() AND pid <> pg_backend_pid() AND wait_event_type = 'Lock' AND wait_event = 'advisory'`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n > 0
}

// TestIndexMigrationCancelled: a start stopped (SIGTERM cancels Open's
// context) while it builds, or while it waits for another node's build,
// ends at once and leaves no advisory lock held; the next start builds
// the index.
func TestIndexMigrationCancelled(t *testing.T) {
	cfg, _, raw := before0030(t)
	release := holdBuild(t, raw)
	open := func(ctx context.Context, logs *logBuffer) <-chan error {
		done := make(chan error, 1)
		go func() {
			db, err := store.Open(ctx, cfg, logs.logger())
			if err == nil {
				_ = db.Close()
			}
			done <- err
		}()
		return done
	}
	ctx1, cancel1 := context.WithCancel(context.Background())
	defer cancel1()
	var logs1, logs2 logBuffer
	first := open(ctx1, &logs1)
	waitBuildWaiting(t, raw, first)
	ctx2, cancel2 := context.WithCancel(context.Background())
	defer cancel2()
	second := open(ctx2, &logs2)
	deadline := time.Now().Add(30 * time.Second)
	for !strings.Contains(logs2.String(), "waiting for another node's index build") {
		if time.Now().After(deadline) {
			t.Fatalf("the second node does not wait:\n%s", logs2.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	for i, c := range []struct {
		cancel func()
		done   <-chan error
	}{{cancel2, second}, {cancel1, first}} {
		c.cancel()
		select {
		case err := <-c.done:
			if !errors.Is(err, context.Canceled) {
				t.Errorf("node %d: Open cancelled: %v", 2-i, err)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("node %d: Open still running 10 s after its cancel", 2-i)
		}
	}
	deadline = time.Now().Add(10 * time.Second)
	for {
		var n int
		if err := raw.QueryRow("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND granted").Scan(&n); err != nil {
			t.Fatal(err)
		}
		if n == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d advisory locks still held after the cancelled starts", n)
		}
		time.Sleep(20 * time.Millisecond)
	}
	release()
	var logs logBuffer
	if err := <-openAsync(t, cfg, &logs); err != nil {
		t.Fatalf("Open after the cancelled starts: %v", err)
	}
	checkIndexValid(t, raw)
}

// TestIndexMigrationClaimTakenUpOnce: two nodes of this release start at
// once on a claim its builder left (a crash): one takes it up and builds,
// the other waits for that build (it does not start without the index)
// and then finds the migration done; one build in all.
func TestIndexMigrationClaimTakenUpOnce(t *testing.T) {
	ctx := ctxT(t)
	cfg := postgresDialect(t).NewConfig(t)
	db := storetest.Open(t, cfg)
	for _, q := range []string{"DROP INDEX audit_log_action", "UPDATE schema_migrations SET applied_at = '-infinity' WHERE version = '0030_audit_action'"} {
		if err := db.ExecTx(ctx, q); err != nil {
			t.Fatal(err)
		}
	}
	raw, err := sql.Open("pgx", cfg.DSN)
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	release := holdBuild(t, raw)
	var logs [2]logBuffer
	first := openAsync(t, cfg, &logs[0])
	waitBuildWaiting(t, raw, first)
	second := openAsync(t, cfg, &logs[1])
	deadline := time.Now().Add(30 * time.Second)
	for !strings.Contains(logs[1].String(), "waiting for another node's index build") {
		select {
		case err := <-second:
			t.Fatalf("the second node started (%v) while the first took up the build:\n%s", err, logs[1].String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("the second node does not wait for the first's build:\n%s", logs[1].String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	time.Sleep(3 * indexLockPollTest)
	select {
	case err := <-second:
		t.Fatalf("the second node started (%v) while the build was still running", err)
	default:
	}
	release()
	for i, ch := range []<-chan error{first, second} {
		if err := <-ch; err != nil {
			t.Fatalf("node %d: Open: %v", i+1, err)
		}
	}
	checkIndexValid(t, raw)
	all := logs[0].String() + logs[1].String()
	if n := strings.Count(all, "taking up an index build"); n != 1 {
		t.Errorf("claim taken up %d times, want 1:\n%s", n, all)
	}
	if n := strings.Count(all, `msg="store: building index" version=0030_audit_action`); n != 1 {
		t.Errorf("%d builds, want 1:\n%s", n, all)
	}
	var claimed bool
	if err := raw.QueryRow("SELECT applied_at = '-infinity' FROM schema_migrations WHERE version = '0030_audit_action'").Scan(&claimed); err != nil || claimed {
		t.Errorf("0030 still claimed after its build: %v, %v", claimed, err)
	}
}

// indexLockPollTest is store's indexLockPoll: how often a waiting node
// asks again for the build lock.
const indexLockPollTest = 200 * time.Millisecond
