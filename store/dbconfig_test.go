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
