package store

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"io"
	"net"
	"syscall"

	"github.com/jackc/pgx/v5/pgconn"
	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"

	"github.com/thiqa/thiqa/internal/outage"
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
		return unavailable(fmt.Errorf("%s: %w", what, err))
	}
}

// unavailable marks err for the services (outage.Mark) when it says the
// database could not be reached or the connection was lost, also during a
// COMMIT (ErrOutcomeUnknown), or that it could not be written because of
// the disk (isStorageFault: full, read-only): the services answer "try
// again later" (HTTP 503, OCSP tryLater) instead of an internal error.
func unavailable(err error) error {
	if err != nil && (isConnLost(err) || errors.Is(err, ErrOutcomeUnknown) || isStorageFault(err)) {
		return outage.Mark(err)
	}
	return err
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

// ErrOutcomeUnknown is returned (wrapped) when the connection to the
// database was lost while a write was being committed: the write may or
// may not have taken effect, and it was not repeated.
var ErrOutcomeUnknown = errors.New("store: the connection was lost while committing; the write may or may not have taken effect")

// isConnLost reports whether err says the connection to the database was
// lost or could not be made: the server terminated it (restart, failover,
// pg_terminate_backend: SQLSTATE 57P01, 57P02), it is starting up (57P03),
// a connection exception (class 08), a refused connection or a broken
// socket. A statement that failed so took no effect unless it was a
// COMMIT or ran outside a transaction.
func isConnLost(err error) bool {
	if err == nil || errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return false
	}
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		switch {
		case pe.Code == "57P01", pe.Code == "57P02", pe.Code == "57P03", len(pe.Code) == 5 && pe.Code[:2] == "08":
			return true
		}
		return false
	}
	var ce *pgconn.ConnectError
	return errors.Is(err, driver.ErrBadConn) || errors.As(err, &ce) || isNetError(err) ||
		errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || pgconn.SafeToRetry(err)
}

// isNetError reports whether err comes from the network: a net.Error, but
// a bare system error number only when it is one of a connection's.
// (syscall.Errno has Timeout and Temporary, so every errno, ENOENT or
// ENOSPC from a file as much as ECONNRESET, satisfies net.Error.)
func isNetError(err error) bool {
	var ne net.Error
	if !errors.As(err, &ne) {
		return false
	}
	errno, bare := ne.(syscall.Errno)
	if !bare {
		return true
	}
	switch errno {
	case syscall.ECONNRESET, syscall.ECONNREFUSED, syscall.ECONNABORTED, syscall.EPIPE, syscall.ETIMEDOUT,
		syscall.ENETDOWN, syscall.ENETUNREACH, syscall.ENETRESET, syscall.EHOSTUNREACH, syscall.ENOTCONN:
		return true
	}
	return false
}

// commitError marks an error of COMMIT, which retries must tell apart from
// the failures of the statements before it: a transaction whose connection
// was lost before COMMIT was rolled back by the server, one lost during
// COMMIT may have been committed.
type commitError struct{ err error }

func (e *commitError) Error() string { return "committing: " + e.err.Error() }
func (e *commitError) Unwrap() error { return e.err }

// isRetryable reports whether a transaction that failed with err may
// succeed when run again: PostgreSQL serialisation failures and deadlocks,
// SQLite busy or locked databases (another process held the write lock for
// longer than busy_timeout), and a connection lost before COMMIT (the
// server rolled the transaction back; the retry takes a new connection).
// A connection lost during COMMIT is not retryable: the first attempt may
// have been committed.
func isRetryable(err error) bool {
	var ce *commitError
	if isConnLost(err) {
		return !errors.As(err, &ce)
	}
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
