// Package outage marks the errors of a dependency that is down for a while
// and expected to come back: the database unreachable, its connection lost
// mid-request. The store marks them; each service's HTTP edge answers them
// in its protocol's words for "try again later" (HTTP 503, OCSP tryLater)
// instead of as an internal error, without importing the store.
package outage

import "errors"

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
