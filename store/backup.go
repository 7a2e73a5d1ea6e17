package store

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"os/exec"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"modernc.org/sqlite"
)

// ErrToolMissing is returned (wrapped) when a PostgreSQL client program
// (pg_dump, psql) is not installed.
var ErrToolMissing = errors.New("store: PostgreSQL client program not found (apt-get install postgresql-client)")

// sqliteBackuper is what modernc.org/sqlite's driver connection offers for
// SQLite's online backup API.
type sqliteBackuper interface {
	NewBackup(dstURI string) (*sqlite.Backup, error)
}

// BackupSQLite writes a consistent copy of the SQLite database to dst, a
// file that must not exist yet, while other connections and processes
// keep writing. It uses SQLite's online backup API with one step over
// every page: the copy is made inside one read transaction, so it is the
// database as of one commit (in WAL mode writers are not blocked). The
// API, unlike VACUUM INTO, copies the pages as they are, without
// rebuilding every table and index, and needs no free space for a
// rebuilt database in the live folder.
func (db *DB) BackupSQLite(ctx context.Context, dst string) error {
	if db.dialect != DriverSQLite {
		return fmt.Errorf("store: BackupSQLite on a %s store", db.dialect)
	}
	f, err := os.OpenFile(dst, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return fmt.Errorf("store: sqlite backup: creating %s: %w", dst, err)
	}
	f.Close()
	conn, err := db.r.Conn(ctx)
	if err != nil {
		return fmt.Errorf("store: sqlite backup: %w", err)
	}
	defer conn.Close()
	err = conn.Raw(func(dc any) error {
		b, ok := dc.(sqliteBackuper)
		if !ok {
			return fmt.Errorf("the sqlite driver connection (%T) has no backup API", dc)
		}
		bk, err := b.NewBackup(dst)
		if err != nil {
			return err
		}
		for {
			more, err := bk.Step(-1)
			if err != nil {
				_ = bk.Finish()
				return err
			}
			if !more {
				break
			}
		}
		return bk.Finish()
	})
	if err != nil {
		return fmt.Errorf("store: sqlite backup to %s: %w", dst, err)
	}
	return syncFile(dst)
}

// syncFile flushes a file to disk.
func syncFile(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("store: syncing %s: %w", path, err)
	}
	defer f.Close()
	if err := f.Sync(); err != nil {
		return fmt.Errorf("store: syncing %s: %w", path, err)
	}
	return nil
}

// libpqCommand prepares a PostgreSQL client program for the database dsn
// names: the DSN goes in --dbname, its password (if any) in PGPASSWORD, so
// that it does not show in the process list.
func libpqCommand(ctx context.Context, program, dsn string, args ...string) (*exec.Cmd, error) {
	path, err := exec.LookPath(program)
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %w", ErrToolMissing, program, err)
	}
	env := os.Environ()
	if u, err := url.Parse(dsn); err == nil && (u.Scheme == "postgres" || u.Scheme == "postgresql") && u.User != nil {
		if pw, ok := u.User.Password(); ok {
			env = append(env, "PGPASSWORD="+pw)
			u.User = url.User(u.User.Username())
			dsn = u.String()
		}
	}
	cmd := exec.CommandContext(ctx, path, append(args, "--dbname="+dsn)...)
	cmd.Env = env
	return cmd, nil
}

// DumpPostgres writes a plain-SQL dump of the database dsn names to w with
// pg_dump: one snapshot (a repeatable-read transaction), so consistent
// while instances keep writing; without owners or privileges, so that it
// loads into a database owned by another role.
func DumpPostgres(ctx context.Context, dsn string, w io.Writer) error {
	cmd, err := libpqCommand(ctx, "pg_dump", dsn, "--format=plain", "--no-owner", "--no-privileges", "--quote-all-identifiers")
	if err != nil {
		return err
	}
	var stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = w, &stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("store: pg_dump: %w: %s", err, strings.TrimSpace(stderr.String()))
	}
	return nil
}

// RestorePostgres loads a dump written by DumpPostgres into the database
// dsn names with psql, in one transaction that stops at the first error:
// a failed load leaves the database as it was.
func RestorePostgres(ctx context.Context, dsn string, r io.Reader) error {
	cmd, err := libpqCommand(ctx, "psql", dsn, "--no-psqlrc", "--quiet", "--single-transaction",
		"--set=ON_ERROR_STOP=1", "--output=/dev/null")
	if err != nil {
		return err
	}
	var stderr bytes.Buffer
	cmd.Stdin, cmd.Stderr = r, &stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("store: psql: %w: %s", err, strings.TrimSpace(stderr.String()))
	}
	return nil
}

// PostgresState is what a PostgreSQL database holds, as far as a restore
// cares.
type PostgresState struct {
	// Tables counts the tables outside the system schemas.
	Tables int
	// Deployment is the recorded identity; nil when there is none.
	Deployment *Deployment
}

// InspectPostgres reports whether the database dsn names is empty and, if
// it holds a Thiqa store, whose deployment it is. It changes nothing (it
// does not migrate).
func InspectPostgres(ctx context.Context, dsn string) (PostgresState, error) {
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		return PostgresState{}, fmt.Errorf("store: postgres: connecting: %w", err)
	}
	defer conn.Close(context.Background())
	var st PostgresState
	err = conn.QueryRow(ctx, `SELECT count(*) FROM pg_catalog.pg_tables
WHERE schemaname NOT IN ('pg_catalog', 'information_schema')`).Scan(&st.Tables)
	if err != nil {
		return PostgresState{}, fmt.Errorf("store: postgres: counting tables: %w", err)
	}
	var exists bool
	if err := conn.QueryRow(ctx, `SELECT to_regclass('deployment') IS NOT NULL`).Scan(&exists); err != nil {
		return PostgresState{}, fmt.Errorf("store: postgres: looking for the deployment table: %w", err)
	}
	if !exists {
		return st, nil
	}
	var d Deployment
	var ns int64
	err = conn.QueryRow(ctx, `SELECT root_sha256, created_at FROM deployment WHERE id = 1`).Scan(&d.RootSHA256, &ns)
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		return st, nil
	case err != nil:
		return PostgresState{}, fmt.Errorf("store: postgres: reading the deployment identity: %w", err)
	}
	d.CreatedAt = time.Unix(0, ns).UTC()
	st.Deployment = &d
	return st, nil
}
