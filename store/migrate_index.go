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
		if m == nil {
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
// connection; the others wait for the lock, then find the migration
// recorded. An index left INVALID by an interrupted build is dropped and
// built again; one found valid (a build that ended before the migration
// was recorded) is kept. On a partitioned table, where PostgreSQL cannot
// build concurrently, the plain build runs instead, and a log line says so.
// It reports whether it applied the migration.
func (db *DB) migrateIndexes(ctx context.Context, m migration, builds []indexBuild) (applied bool, err error) {
	conn, err := db.w.Conn(ctx)
	if err != nil {
		return false, fmt.Errorf("taking a connection: %w", err)
	}
	locked := false
	defer func() {
		if locked {
			uctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
			_, uerr := conn.ExecContext(uctx, "SELECT pg_advisory_unlock($1)", int64(indexBuildLockKey))
			cancel()
			if uerr != nil {
				// Never give the pool back a connection holding the lock.
				_ = conn.Raw(func(any) error { return driver.ErrBadConn })
			}
		}
		_ = conn.Close()
	}()
	if err := db.lockIndexBuilds(ctx, conn, m.version); err != nil {
		return false, err
	}
	locked = true

	var sum string
	err = conn.QueryRowContext(ctx, "SELECT checksum FROM schema_migrations WHERE version = $1", m.version).Scan(&sum)
	switch {
	case err == nil:
		if sum != m.checksum {
			return false, fmt.Errorf("applied migration was changed since (checksum %s, file %s)", sum, m.checksum)
		}
		return false, nil
	case !errors.Is(err, sql.ErrNoRows):
		return false, fmt.Errorf("reading schema_migrations: %w", err)
	}
	for _, b := range builds {
		if err := db.buildIndex(ctx, conn, m.version, b); err != nil {
			return false, err
		}
	}
	if _, err := conn.ExecContext(ctx, "INSERT INTO schema_migrations (version, checksum) VALUES ($1, $2)", m.version, m.checksum); err != nil {
		return false, fmt.Errorf("recording: %w", err)
	}
	return true, nil
}

// lockIndexBuilds takes indexBuildLockKey on conn, asking again every
// indexLockPoll while another process holds it.
func (db *DB) lockIndexBuilds(ctx context.Context, conn *sql.Conn, version string) error {
	logged := false
	for {
		var ok bool
		if err := conn.QueryRowContext(ctx, "SELECT pg_try_advisory_lock($1)", int64(indexBuildLockKey)).Scan(&ok); err != nil {
			return fmt.Errorf("taking the index build lock: %w", err)
		}
		if ok {
			return nil
		}
		if !logged {
			db.logger.Info("store: waiting for another node's index build", "version", version)
			logged = true
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("waiting for the index build lock: %w", ctx.Err())
		case <-time.After(indexLockPoll):
		}
	}
}

// buildIndex builds one index of an index-only migration on conn, outside
// a transaction.
func (db *DB) buildIndex(ctx context.Context, conn *sql.Conn, version string, b indexBuild) error {
	var kind string
	if err := conn.QueryRowContext(ctx, "SELECT relkind::text FROM pg_class WHERE oid = to_regclass($1)", b.table).Scan(&kind); err != nil {
		return fmt.Errorf("index %s: reading table %s: %w", b.name, b.table, err)
	}
	partitioned := kind == "p"
	var valid bool
	err := conn.QueryRowContext(ctx, "SELECT indisvalid FROM pg_index WHERE indexrelid = to_regclass($1)", b.name).Scan(&valid)
	switch {
	case err == nil && valid:
		db.logger.Info("store: index already built, recording its migration", "version", version, "index", b.name, "table", b.table)
		return nil
	case err == nil:
		db.logger.Warn("store: dropping an invalid index an interrupted build left, to build it again", "version", version, "index", b.name, "table", b.table)
		drop := "DROP INDEX CONCURRENTLY IF EXISTS " + b.name
		if partitioned {
			drop = "DROP INDEX IF EXISTS " + b.name
		}
		if _, err := conn.ExecContext(ctx, drop); err != nil {
			return fmt.Errorf("index %s: dropping the invalid index: %w", b.name, err)
		}
	case !errors.Is(err, sql.ErrNoRows):
		return fmt.Errorf("index %s: reading pg_index: %w", b.name, err)
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
