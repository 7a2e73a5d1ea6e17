package store

import (
	"errors"
	"fmt"
	"net"
	"os"
	"syscall"
	"testing"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/thiqa/thiqa/internal/outage"
)

// A disk that is full or read-only, in PostgreSQL's words or the file
// system's, is an outage like a lost connection; other failures are not.
// (SQLite's own codes are exercised on a real full disk: diskfull_test.go.)
func TestStorageFaultIsAnOutage(t *testing.T) {
	for _, err := range []error{
		&pgconn.PgError{Code: "53100", Message: "could not extend file: No space left on device"},
		&pgconn.PgError{Code: "58030", Message: "could not write to file"},
		&os.PathError{Op: "write", Path: "/var/lib/thiqa/x", Err: syscall.ENOSPC},
		&os.PathError{Op: "open", Path: "/var/lib/thiqa/x", Err: syscall.EROFS},
	} {
		wrapped := fmt.Errorf("store: writing: %w", err)
		if !isStorageFault(wrapped) || !outage.Is(unavailable(wrapped)) {
			t.Errorf("%v: not an outage", err)
		}
	}
	for _, err := range []error{
		&pgconn.PgError{Code: "23503"}, // foreign_key_violation
		errors.New("something else"),
	} {
		if isStorageFault(err) || outage.Is(unavailable(err)) {
			t.Errorf("%v: taken for an outage", err)
		}
	}
	if err := (&os.PathError{Op: "open", Path: "/x", Err: syscall.ENOENT}); isStorageFault(err) {
		t.Errorf("%v: taken for a full disk", err)
	}
}

// TestFileErrnoIsNoLostConnection: a file's error number (which satisfies
// net.Error, as every syscall.Errno does) is not a lost connection, so a
// write that failed on it is not run again as if the connection had
// dropped; a connection's error number, bare or in a net.OpError, is.
func TestFileErrnoIsNoLostConnection(t *testing.T) {
	for _, err := range []error{syscall.ENOENT, syscall.EACCES, &os.PathError{Op: "open", Path: "/x", Err: syscall.EISDIR}} {
		if isConnLost(fmt.Errorf("store: %w", err)) {
			t.Errorf("%v: taken for a lost connection", err)
		}
	}
	for _, err := range []error{syscall.ECONNRESET, syscall.EPIPE, &net.OpError{Op: "read", Net: "tcp", Err: syscall.ENOENT}} {
		if !isConnLost(fmt.Errorf("store: %w", err)) {
			t.Errorf("%v: not taken for a lost connection", err)
		}
	}
}
