package store

import (
	"errors"
	"fmt"
	"strings"
)

// DatabaseConfig is the serialisable store section of thiqa.yaml: the
// database as an operator names it, by DSN (a SQLite file relative to the
// data folder, or a PostgreSQL URL) or by the environment variable that
// holds it. With the DSN resolved it becomes the Config that Open takes.
type DatabaseConfig struct {
	// Driver is sqlite (embedded, the default) or postgres.
	Driver string `yaml:"driver"`
	// DSN is the SQLite file (relative to the data folder) or a PostgreSQL URL.
	DSN string `yaml:"dsn"`
	// DSNEnv names an environment variable holding the DSN (keeps passwords out of the file).
	DSNEnv string `yaml:"dsnEnv"`
	// MaxOpenConns bounds the connection pool (0: driver default).
	MaxOpenConns int `yaml:"maxOpenConns"`
	// Synchronous is SQLite's durability: FULL (the default) fsyncs every
	// commit, so an audit record, and the time-stamp token or certificate
	// it covers, survives a power failure once the response is sent;
	// NORMAL survives a crash of the process only. Ignored for PostgreSQL,
	// whose durability is the database server's configuration (keep its
	// fsync and synchronous_commit on).
	Synchronous string `yaml:"synchronous"`
}

// SQLiteSynchronous is the SQLite synchronous setting to open the store
// with: the configured one, FULL when none is configured.
func (s DatabaseConfig) SQLiteSynchronous() string {
	if s.Driver != DriverSQLite {
		return ""
	}
	if s.Synchronous == "" {
		return "FULL"
	}
	return strings.ToUpper(s.Synchronous)
}

// Config is the Config that Open takes for the section's database at dsn
// (DSN or the DSNEnv variable's value, resolved by the caller): the
// section's driver, pool size and SQLiteSynchronous.
func (s DatabaseConfig) Config(dsn string) Config {
	return Config{Driver: s.Driver, DSN: dsn, MaxOpenConns: s.MaxOpenConns, Synchronous: s.SQLiteSynchronous()}
}

// Validate checks the section, naming its keys (store.driver, …).
func (s DatabaseConfig) Validate() error {
	var errs []string
	switch s.Driver {
	case DriverSQLite, DriverPostgres:
	default:
		errs = append(errs, fmt.Sprintf("store.driver: want sqlite or postgres, got %q", s.Driver))
	}
	if s.DSN == "" && s.DSNEnv == "" {
		errs = append(errs, "store: one of dsn or dsnEnv is required")
	}
	if s.MaxOpenConns < 0 {
		errs = append(errs, "store.maxOpenConns: must not be negative")
	}
	switch strings.ToUpper(s.Synchronous) {
	case "", "NORMAL", "FULL":
	default:
		errs = append(errs, fmt.Sprintf("store.synchronous: want FULL or NORMAL, got %q", s.Synchronous))
	}
	if len(errs) > 0 {
		return errors.New(strings.Join(errs, "; "))
	}
	return nil
}
