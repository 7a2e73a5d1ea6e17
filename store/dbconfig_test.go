package store_test

import (
	"strings"
	"testing"

	"github.com/thiqa/thiqa/store"
)

// TestDatabaseConfigSynchronous: SQLite is durable (FULL) unless NORMAL is
// chosen; it is ignored for PostgreSQL; unknown values are refused.
func TestDatabaseConfigSynchronous(t *testing.T) {
	for _, tc := range []struct {
		driver, sync, want string
		bad                bool
	}{
		{"sqlite", "", "FULL", false},
		{"sqlite", "full", "FULL", false},
		{"sqlite", "NORMAL", "NORMAL", false},
		{"sqlite", "OFF", "", true},
		{"postgres", "", "", false},
		{"postgres", "FULL", "", false},
	} {
		c := store.DatabaseConfig{Driver: tc.driver, DSN: "thiqa.db", Synchronous: tc.sync}
		err := c.Validate()
		if bad := err != nil && strings.Contains(err.Error(), "store.synchronous"); bad != tc.bad {
			t.Errorf("%s/%q: Validate() = %v, want a store.synchronous error: %v", tc.driver, tc.sync, err, tc.bad)
		}
		if !tc.bad {
			if got := c.SQLiteSynchronous(); got != tc.want {
				t.Errorf("%s/%q: SQLiteSynchronous() = %q, want %q", tc.driver, tc.sync, got, tc.want)
			}
		}
	}
	err := store.DatabaseConfig{Driver: "mysql", MaxOpenConns: -1}.Validate()
	for _, want := range []string{"store.driver", "one of dsn or dsnEnv", "store.maxOpenConns"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("bad section: %v, want %q", err, want)
		}
	}
}

// TestDatabaseConfigConfig: the section becomes the Config that Open takes
// for the DSN the caller resolved, with SQLite durable by default.
func TestDatabaseConfigConfig(t *testing.T) {
	for _, tc := range []struct {
		in   store.DatabaseConfig
		dsn  string
		want store.Config
	}{
		{store.DatabaseConfig{Driver: "sqlite", DSN: "thiqa.db", MaxOpenConns: 4}, "/data/thiqa.db",
			store.Config{Driver: "sqlite", DSN: "/data/thiqa.db", MaxOpenConns: 4, Synchronous: "FULL"}},
		{store.DatabaseConfig{Driver: "sqlite", DSN: "thiqa.db", Synchronous: "normal"}, "/data/thiqa.db",
			store.Config{Driver: "sqlite", DSN: "/data/thiqa.db", Synchronous: "NORMAL"}},
		{store.DatabaseConfig{Driver: "postgres", DSNEnv: "THIQA_DSN", MaxOpenConns: 20, Synchronous: "FULL"}, "postgres://db/thiqa",
			store.Config{Driver: "postgres", DSN: "postgres://db/thiqa", MaxOpenConns: 20}},
	} {
		if got := tc.in.Config(tc.dsn); got != tc.want {
			t.Errorf("%+v.Config(%q) = %+v, want %+v", tc.in, tc.dsn, got, tc.want)
		}
	}
}
