package store

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"embed"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"regexp"
	"slices"
	"strings"
)

//go:embed migrations/sqlite/*.sql migrations/postgres/*.sql
var migrationFiles embed.FS

// migrationName is the required form of a migration file name.
var migrationName = regexp.MustCompile(`^[0-9]{4}_[a-z0-9_]+\.sql$`)

// migrationLockKey is the PostgreSQL advisory lock that serialises
// migrations between processes ("thiqa-mi" as a big-endian int64).
const migrationLockKey = 0x74686971612d6d69

// migration is one embedded SQL file.
type migration struct {
	version  string // file name without .sql, e.g. "0001_audit"
	sql      string
	checksum string // hex SHA-256 of the file
}

// loadMigrations returns the dialect's migrations in order, after checking
// that both dialects have the same set of files.
func loadMigrations(dialect string) ([]migration, error) {
	sets := map[string][]string{}
	for _, d := range []string{DriverSQLite, DriverPostgres} {
		entries, err := fs.ReadDir(migrationFiles, path.Join("migrations", d))
		if err != nil {
			return nil, fmt.Errorf("store: reading %s migrations: %w", d, err)
		}
		for _, e := range entries {
			if !migrationName.MatchString(e.Name()) {
				return nil, fmt.Errorf("store: migration %s/%s: name must look like 0001_name.sql", d, e.Name())
			}
			sets[d] = append(sets[d], e.Name())
		}
		slices.Sort(sets[d])
	}
	if !slices.Equal(sets[DriverSQLite], sets[DriverPostgres]) {
		return nil, fmt.Errorf("store: the sqlite and postgres migration folders differ: %v vs %v", sets[DriverSQLite], sets[DriverPostgres])
	}
	var out []migration
	for _, name := range sets[dialect] {
		b, err := migrationFiles.ReadFile(path.Join("migrations", dialect, name))
		if err != nil {
			return nil, fmt.Errorf("store: reading migration %s: %w", name, err)
		}
		sum := sha256.Sum256(b)
		out = append(out, migration{
			version:  strings.TrimSuffix(name, ".sql"),
			sql:      string(b),
			checksum: hex.EncodeToString(sum[:]),
		})
	}
	return out, nil
}

// schemaMigrationsDDL creates the table that records applied migrations.
func (db *DB) schemaMigrationsDDL() string {
	if db.dialect == DriverPostgres {
		return `CREATE TABLE IF NOT EXISTS schema_migrations (
	version    TEXT PRIMARY KEY,
	checksum   TEXT NOT NULL,
	applied_at TIMESTAMPTZ NOT NULL DEFAULT now()
)`
	}
	return `CREATE TABLE IF NOT EXISTS schema_migrations (
	version    TEXT PRIMARY KEY,
	checksum   TEXT NOT NULL,
	applied_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
)`
}

// lockMigrations takes the cross-process migration lock for the rest of
// the transaction: a PostgreSQL advisory lock; on SQLite the transaction
// already holds the write lock (BEGIN IMMEDIATE).
func (t *txn) lockMigrations(ctx context.Context) error {
	if t.db.dialect != DriverPostgres {
		return nil
	}
	if _, err := t.exec(ctx, "SELECT pg_advisory_xact_lock(?)", int64(migrationLockKey)); err != nil {
		return fmt.Errorf("taking the migration lock: %w", err)
	}
	return nil
}

// migrate applies every migration not yet recorded, in order, each in its
// own transaction under the migration lock, and refuses a database where an
// applied migration's checksum differs from the embedded file. On
// PostgreSQL a migration made only of plain CREATE INDEX statements builds
// its indexes concurrently, outside a transaction (migrateIndexes).
func (db *DB) migrate(ctx context.Context) error {
	ms, err := loadMigrations(db.dialect)
	if err != nil {
		return err
	}
	err = db.writeTx(ctx, func(t *txn) error {
		if err := t.lockMigrations(ctx); err != nil {
			return err
		}
		_, err := t.exec(ctx, db.schemaMigrationsDDL())
		return err
	})
	if err != nil {
		return fmt.Errorf("store: creating schema_migrations: %w", err)
	}
	for _, m := range ms {
		if db.dialect == DriverPostgres {
			if builds := indexOnly(m.sql); builds != nil {
				applied, err := db.migrateIndexes(ctx, m, builds)
				if err != nil {
					return fmt.Errorf("store: migration %s (%s): %w", m.version, db.dialect, err)
				}
				if applied {
					db.logger.Info("store: migration applied", "version", m.version, "driver", db.dialect)
				}
				continue
			}
		}
		applied := false
		err := db.writeTx(ctx, func(t *txn) error {
			applied = false
			if err := t.lockMigrations(ctx); err != nil {
				return err
			}
			var sum string
			err := t.queryRow(ctx, "SELECT checksum FROM schema_migrations WHERE version = ?", m.version).Scan(&sum)
			switch {
			case err == nil:
				if sum != m.checksum {
					return fmt.Errorf("applied migration was changed since (checksum %s, file %s)", sum, m.checksum)
				}
				return nil
			case !errors.Is(err, sql.ErrNoRows):
				return fmt.Errorf("reading schema_migrations: %w", err)
			}
			if _, err := t.exec(ctx, m.sql); err != nil {
				return err
			}
			if _, err := t.exec(ctx, "INSERT INTO schema_migrations (version, checksum) VALUES (?, ?)", m.version, m.checksum); err != nil {
				return fmt.Errorf("recording: %w", err)
			}
			applied = true
			return nil
		})
		if err != nil {
			return fmt.Errorf("store: migration %s (%s): %w", m.version, db.dialect, err)
		}
		if applied {
			db.logger.Info("store: migration applied", "version", m.version, "driver", db.dialect)
		}
	}
	return nil
}
