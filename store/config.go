package store

import (
	"errors"
	"fmt"
	"path/filepath"
	"strings"

	"github.com/jackc/pgx/v5"
)

// Driver names accepted in Config.Driver.
const (
	DriverSQLite   = "sqlite"
	DriverPostgres = "postgres"
)

// DefaultSQLiteFile is the name of the embedded database in a data folder.
const DefaultSQLiteFile = "thiqa.db"

// Config says which database to use. It is serialisable (YAML) and checked
// with Validate before Open uses it.
type Config struct {
	// Driver is "sqlite" (default) or "postgres".
	Driver string `yaml:"driver"`
	// DSN is the database file path for SQLite and a connection URL
	// (postgres://user@host:port/db?sslmode=…) or keyword/value string for
	// PostgreSQL.
	DSN string `yaml:"dsn"`
	// MaxOpenConns bounds the connection pool (for SQLite: the read pool;
	// SQLite has one writer connection). Zero means a default.
	MaxOpenConns int `yaml:"maxOpenConns"`
	// Synchronous is SQLite's PRAGMA synchronous: "NORMAL" (default; in WAL
	// mode a commit survives a crash of the process but the last commits may
	// be lost on power failure) or "FULL" (every commit is fsynced). Ignored
	// for PostgreSQL, whose durability is the server's configuration.
	Synchronous string `yaml:"synchronous"`
}

// SQLiteConfig returns the default configuration: thiqa.db in dataDir.
func SQLiteConfig(dataDir string) Config {
	return Config{Driver: DriverSQLite, DSN: filepath.Join(dataDir, DefaultSQLiteFile)}
}

// Validate checks the configuration and says what is wrong with it.
func (c Config) Validate() error {
	switch c.Driver {
	case DriverSQLite, "":
		if c.DSN == "" {
			return errors.New("store: sqlite: dsn (the database file path) is empty")
		}
		if c.DSN == ":memory:" || strings.HasPrefix(c.DSN, "file:") || strings.ContainsAny(c.DSN, "?#") {
			return fmt.Errorf("store: sqlite: dsn %q must be a plain file path (no URI, query or in-memory database)", c.DSN)
		}
		switch strings.ToUpper(c.Synchronous) {
		case "", "NORMAL", "FULL":
		default:
			return fmt.Errorf("store: sqlite: synchronous %q: want NORMAL or FULL", c.Synchronous)
		}
	case DriverPostgres:
		if c.DSN == "" {
			return errors.New("store: postgres: dsn (connection URL) is empty")
		}
		if _, err := pgx.ParseConfig(c.DSN); err != nil {
			// pgx's message can quote the DSN, password included: keep it out.
			return errors.New("store: postgres: dsn is not a valid connection string")
		}
	default:
		return fmt.Errorf("store: driver %q: want %q or %q", c.Driver, DriverSQLite, DriverPostgres)
	}
	if c.MaxOpenConns < 0 {
		return fmt.Errorf("store: maxOpenConns %d is negative", c.MaxOpenConns)
	}
	return nil
}

// dialect is the normalised driver name.
func (c Config) dialect() string {
	if c.Driver == "" {
		return DriverSQLite
	}
	return c.Driver
}
