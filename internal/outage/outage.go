// Package outage marks the errors of a dependency that is down for a while
// and expected to come back: the database unreachable, its connection lost
// mid-request, the disk full or read-only (IsStorage). The store marks
// them; each service's HTTP edge answers them
// in its protocol's words for "try again later" (HTTP 503, OCSP tryLater)
// instead of as an internal error, without importing the store.
package outage

import (
	"errors"
	"syscall"
)

// ErrUnavailable is in the chain of every error Mark returns.
var ErrUnavailable = errors.New("a dependency is temporarily unavailable")

// Mark returns err with ErrUnavailable in its chain (nil for nil; err
// itself when it is marked already). The message is err's.
func Mark(err error) error {
	if err == nil || errors.Is(err, ErrUnavailable) {
		return err
	}
	return &marked{err: err}
}

// Is reports whether err was marked by Mark.
func Is(err error) bool { return errors.Is(err, ErrUnavailable) }

// marked keeps err's message and chain and adds ErrUnavailable.
type marked struct{ err error }

func (m *marked) Error() string   { return m.err.Error() }
func (m *marked) Unwrap() []error { return []error{m.err, ErrUnavailable} }

// IsStorage reports whether err says that a file could not be written
// because of the disk under it: no space left (ENOSPC), the quota used up
// (EDQUOT), the file system mounted read-only (EROFS) or an I/O error
// (EIO). Such a failure lasts until an operator frees space or repairs the
// mount, and then passes without a restart: like a database outage, it is
// answered "try again later".
func IsStorage(err error) bool {
	return errors.Is(err, syscall.ENOSPC) || errors.Is(err, syscall.EDQUOT) ||
		errors.Is(err, syscall.EROFS) || errors.Is(err, syscall.EIO)
}

// MarkStorage marks err (Mark) when IsStorage says the disk caused it, and
// returns it unchanged otherwise (nil for nil).
func MarkStorage(err error) error {
	if IsStorage(err) {
		return Mark(err)
	}
	return err
}
