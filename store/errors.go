package store

import (
	"database/sql"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5/pgconn"
	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"
)

// ErrNotFound is returned (wrapped) when the row asked for does not exist.
var ErrNotFound = errors.New("store: not found")

// ErrConflict is returned (wrapped) when a write would violate a uniqueness
// constraint, e.g. a serial number that is already taken.
var ErrConflict = errors.New("store: conflict")

// mapErr wraps err with ErrConflict or ErrNotFound where it is one of those,
// and with what (the operation) in every case. A nil err stays nil.
func mapErr(what string, err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, sql.ErrNoRows):
		return fmt.Errorf("%s: %w", what, ErrNotFound)
	case isUniqueViolation(err):
		return fmt.Errorf("%s: %w: %w", what, ErrConflict, err)
	default:
		return fmt.Errorf("%s: %w", what, err)
	}
}

// isUniqueViolation reports whether err is a unique or primary-key
// violation in either dialect.
func isUniqueViolation(err error) bool {
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		return pe.Code == "23505" // unique_violation
	}
	var se *sqlite.Error
	if errors.As(err, &se) {
		switch se.Code() {
		case sqlite3.SQLITE_CONSTRAINT_UNIQUE, sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY:
			return true
		}
	}
	return false
}

// isRetryable reports whether a transaction that failed with err may
// succeed when run again: PostgreSQL serialisation failures and deadlocks,
// SQLite busy or locked databases (another process held the write lock for
// longer than busy_timeout).
func isRetryable(err error) bool {
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		return pe.Code == "40001" || pe.Code == "40P01" // serialization_failure, deadlock_detected
	}
	var se *sqlite.Error
	if errors.As(err, &se) {
		switch se.Code() & 0xff {
		case sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED:
			return true
		}
	}
	return false
}
