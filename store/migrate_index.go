package store

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"time"
)

// indexBuildLockKey is the PostgreSQL session advisory lock that
// serialises the index-only migrations between processes ("thiqa-ix" as a
// big-endian int64). It differs from migrationLockKey: that one is taken
// inside transactions (also by older releases), and a migrator waiting for
// it inside a transaction would hold a snapshot that CREATE INDEX
// CONCURRENTLY waits for, while it waits for the build: a deadlock.
const indexBuildLockKey = 0x74686971612d6978

// indexLockPoll is how often a migrator asks again for indexBuildLockKey
// while another process builds. It polls pg_try_advisory_lock instead of
// waiting in pg_advisory_lock, whose statement would hold a snapshot the
// other process's concurrent build waits for.
const indexLockPoll = 200 * time.Millisecond

// indexBuild is one plain CREATE INDEX statement of an index-only
// migration: CREATE INDEX <name> ON <table> <rest>.
type indexBuild struct {
	name, table, rest string
}

// createIndexStmt is the only statement an index-only migration holds:
// neither UNIQUE (a unique index is a constraint, built with the rest of
// its migration), nor already CONCURRENTLY, IF NOT EXISTS or ON ONLY.
var createIndexStmt = regexp.MustCompile(`(?is)^CREATE\s+INDEX\s+([a-z_][a-z0-9_]*)\s+ON\s+([a-z_][a-z0-9_]*)\s*(\(.*)$`)

// indexOnly returns the statements of a migration made of nothing but
// plain CREATE INDEX statements (and comments), or nil for any other.
func indexOnly(sqlText string) []indexBuild {
	var b strings.Builder
	for line := range strings.Lines(sqlText) {
		if i := strings.Index(line, "--"); i >= 0 {
			line = line[:i] + "\n"
		}
		b.WriteString(line)
	}
	var out []indexBuild
	for stmt := range strings.SplitSeq(b.String(), ";") {
		stmt = strings.TrimSpace(stmt)
		if stmt == "" {
			continue
		}
		m := createIndexStmt.FindStringSubmatch(stmt)
		if m == nil || strings.EqualFold(m[1], "concurrently") {
			// CREATE INDEX CONCURRENTLY ON t (…) names no index.
			return nil
		}
		rest := m[3]
		// Quoted names and dollar quotes are not parsed here; a string
		// literal is kept as it is, unless cutting the comments broke it.
		if strings.ContainsAny(rest, "\"$") || strings.Count(rest, "'")%2 != 0 {
			return nil
		}
		out = append(out, indexBuild{name: m[1], table: m[2], rest: rest})
	}
	return out
}

// migrateIndexes applies an index-only PostgreSQL migration without a
// transaction, so that the tables stay writable: each index is built with
// CREATE INDEX CONCURRENTLY (which takes SHARE UPDATE EXCLUSIVE, not the
// SHARE lock of a plain build that stops every INSERT until it is done).
// One process at a time does it, under indexBuildLockKey held on one
// connection; the others wait for the lock, then find the migration done.
//
// The migration is recorded (claimed, applied_at '-infinity') before its
// indexes are built, under migrationLockKey held for that moment only,
// and its applied_at set when they are: a release before concurrent
// builds that starts meanwhile finds it recorded and skips it. Were it not
// recorded, that release would run its plain CREATE INDEX in a transaction
// whose snapshot the concurrent build waits for, while it waits for the
// build's lock: PostgreSQL would end one of them for a deadlock, and the
// other would find the index name taken, so both nodes would fail to
// start. A claim left by a build that stopped is taken up at the next
// Open; a migration done is never looked at again.
//
// An index left INVALID is dropped and built again; one found valid on
// its table is kept. On a partitioned table, where PostgreSQL cannot build
// concurrently, the plain build runs instead, and a log line says so.
// It reports whether it applied the migration.
func (db *DB) migrateIndexes(ctx context.Context, m migration, builds []indexBuild) (applied bool, err error) {
	conn, err := db.w.Conn(ctx)
	if err != nil {
		return false, fmt.Errorf("taking a connection: %w", err)
	}
	defer func() { _ = conn.Close() }()

	// Every Open passes here: a migration done is neither locked nor
	// written.
	if st, err := indexMigrationState(ctx, conn, m); err != nil || st == migrationDone {
		return false, err
	}

	if err := db.lockSession(ctx, conn, indexBuildLockKey, m.version, "store: waiting for another node's index build"); err != nil {
		return false, fmt.Errorf("taking the index build lock: %w", err)
	}
	defer unlockSession(ctx, conn, indexBuildLockKey)

	if err := db.lockSession(ctx, conn, migrationLockKey, m.version, "store: waiting for another node's migration"); err != nil {
		return false, fmt.Errorf("taking the migration lock: %w", err)
	}
	st, err := indexMigrationState(ctx, conn, m)
	if err == nil && st == migrationPending {
		_, err = conn.ExecContext(ctx, "INSERT INTO schema_migrations (version, checksum, applied_at) VALUES ($1, $2, '-infinity')", m.version, m.checksum)
		if err != nil {
			err = fmt.Errorf("recording: %w", err)
		}
	}
	unlockSession(ctx, conn, migrationLockKey)
	switch {
	case err != nil:
		return false, err
	case st == migrationDone:
		// Done meanwhile: by the node of this release that held the build
		// lock, or by one of a release before, in its transaction.
		return false, nil
	case st == migrationClaimed:
		db.logger.Info("store: taking up an index build that stopped before it ended", "version", m.version)
	}
	reset, err := liftTimeouts(ctx, conn)
	if err != nil {
		return false, err
	}
	defer reset()
	for _, b := range builds {
		if err := db.buildIndex(ctx, conn, m.version, b); err != nil {
			return false, err
		}
	}
	if _, err := conn.ExecContext(ctx, "UPDATE schema_migrations SET applied_at = now() WHERE version = $1", m.version); err != nil {
		return false, fmt.Errorf("recording: %w", err)
	}
	return true, nil
}

// liftTimeouts sets statement_timeout and lock_timeout to none on conn for
// the builds: a build waits for every transaction open on the database and
// reads the whole table, so a timeout a role or the DSN sets for queries
// (seconds, say) would end it at every start, and the node would never
// start. reset puts the session's own values back, or closes conn if it
// cannot, so that the pool never hands out a connection without them.
func liftTimeouts(ctx context.Context, conn *sql.Conn) (reset func(), err error) {
	reset = func() {
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
		defer cancel()
		for _, q := range []string{"RESET statement_timeout", "RESET lock_timeout"} {
			if _, err := conn.ExecContext(rctx, q); err != nil {
				_ = conn.Raw(func(any) error { return driver.ErrBadConn })
				return
			}
		}
	}
	for _, q := range []string{"SET statement_timeout = 0", "SET lock_timeout = 0"} {
		if _, err := conn.ExecContext(ctx, q); err != nil {
			reset()
			return nil, fmt.Errorf("lifting the session's timeouts for the build: %w", err)
		}
	}
	return reset, nil
}

// migrationState is where an index-only migration stands in
// schema_migrations.
type migrationState int

const (
	migrationPending migrationState = iota // not recorded
	migrationClaimed                       // recorded when its build started, not ended
	migrationDone                          // recorded, built
)

// indexMigrationState reads m's row of schema_migrations, and refuses a
// recorded checksum that differs from the file's.
func indexMigrationState(ctx context.Context, conn *sql.Conn, m migration) (migrationState, error) {
	var sum string
	var claimed bool
	err := conn.QueryRowContext(ctx, "SELECT checksum, applied_at = '-infinity' FROM schema_migrations WHERE version = $1", m.version).Scan(&sum, &claimed)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return migrationPending, nil
	case err != nil:
		return 0, fmt.Errorf("reading schema_migrations: %w", err)
	case sum != m.checksum:
		return 0, fmt.Errorf("applied migration was changed since (checksum %s, file %s)", sum, m.checksum)
	case claimed:
		return migrationClaimed, nil
	}
	return migrationDone, nil
}

// indexStatus is what the database holds under an index's name.
type indexStatus int

const (
	indexMissing   indexStatus = iota // no index of that name
	indexValid                        // a valid index on its table
	indexInvalid                      // an INVALID index on its table: a build that stopped
	indexElsewhere                    // an index of that name on another table
)

// indexState returns the status of b's index, and the table of an index
// of that name on another table.
func indexState(ctx context.Context, conn *sql.Conn, b indexBuild) (indexStatus, string, error) {
	var valid bool
	var on string
	err := conn.QueryRowContext(ctx, "SELECT indisvalid, CASE WHEN indrelid = to_regclass($2) THEN '' ELSE indrelid::regclass::text END FROM pg_index WHERE indexrelid = to_regclass($1)",
		b.name, b.table).Scan(&valid, &on)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return indexMissing, "", nil
	case err != nil:
		return 0, "", fmt.Errorf("index %s: reading pg_index: %w", b.name, err)
	case on != "":
		return indexElsewhere, on, nil
	case valid:
		return indexValid, "", nil
	}
	return indexInvalid, "", nil
}

// lockSession takes the session advisory lock key on conn, asking again
// every indexLockPoll while another process holds it: waiting in
// pg_advisory_lock would hold a snapshot a concurrent build waits for.
// waitMsg, when not empty, is logged once if it has to wait.
func (db *DB) lockSession(ctx context.Context, conn *sql.Conn, key int64, version, waitMsg string) error {
	logged := false
	for {
		var ok bool
		if err := conn.QueryRowContext(ctx, "SELECT pg_try_advisory_lock($1)", key).Scan(&ok); err != nil {
			// The answer may be lost after the lock was granted: never give
			// the pool back a connection that may hold it.
			_ = conn.Raw(func(any) error { return driver.ErrBadConn })
			return err
		}
		if ok {
			return nil
		}
		if waitMsg != "" && !logged {
			db.logger.Info(waitMsg, "version", version)
			logged = true
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(indexLockPoll):
		}
	}
}

// unlockSession releases the session advisory lock key on conn; if it
// cannot, the connection is closed (which releases it) rather than given
// back to the pool holding it.
func unlockSession(ctx context.Context, conn *sql.Conn, key int64) {
	uctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	var ok bool
	if err := conn.QueryRowContext(uctx, "SELECT pg_advisory_unlock($1)", key).Scan(&ok); err != nil || !ok {
		_ = conn.Raw(func(any) error { return driver.ErrBadConn })
	}
}

// buildIndex builds one index of an index-only migration on conn, outside
// a transaction, unless it is built already.
func (db *DB) buildIndex(ctx context.Context, conn *sql.Conn, version string, b indexBuild) error {
	var kind string
	if err := conn.QueryRowContext(ctx, "SELECT relkind::text FROM pg_class WHERE oid = to_regclass($1)", b.table).Scan(&kind); err != nil {
		return fmt.Errorf("index %s: reading table %s: %w", b.name, b.table, err)
	}
	partitioned := kind == "p"
	st, on, err := indexState(ctx, conn, b)
	if err != nil {
		return err
	}
	switch st {
	case indexElsewhere:
		// Not this migration's index: neither kept as it nor dropped.
		return fmt.Errorf("index %s: an index of that name exists on table %s, not %s: rename or drop it", b.name, on, b.table)
	case indexValid:
		db.logger.Info("store: index already built, kept", "version", version, "index", b.name, "table", b.table)
		return nil
	case indexInvalid:
		db.logger.Warn("store: dropping an invalid index an interrupted build left, to build it again", "version", version, "index", b.name, "table", b.table)
		drop := "DROP INDEX CONCURRENTLY IF EXISTS " + b.name
		if partitioned {
			drop = "DROP INDEX IF EXISTS " + b.name
		}
		if _, err := conn.ExecContext(ctx, drop); err != nil {
			return fmt.Errorf("index %s: dropping the invalid index: %w", b.name, err)
		}
	}
	stmt := fmt.Sprintf("CREATE INDEX CONCURRENTLY %s ON %s %s", b.name, b.table, b.rest)
	if partitioned {
		db.logger.Warn("store: table is partitioned, PostgreSQL cannot build its index concurrently: plain build, writes to the table wait until it ends",
			"version", version, "index", b.name, "table", b.table)
		stmt = fmt.Sprintf("CREATE INDEX %s ON %s %s", b.name, b.table, b.rest)
	}
	db.logger.Info("store: building index", "version", version, "index", b.name, "table", b.table, "concurrently", !partitioned)
	t0 := time.Now()
	if _, err := conn.ExecContext(ctx, stmt); err != nil {
		return fmt.Errorf("index %s: building: %w", b.name, err)
	}
	db.logger.Info("store: index built", "version", version, "index", b.name, "table", b.table, "concurrently", !partitioned,
		"duration", time.Since(t0).Round(time.Millisecond))
	return nil
}
