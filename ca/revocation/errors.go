package revocation

import (
	"errors"
	"net/http"
)

// Why a revocation is refused. A refusal changes nothing and is audited;
// its error is a *Refusal wrapping one of these (test with errors.Is).
// ErrBadReason (reason.go) is the fifth.
var (
	// ErrBadSerial: the serial is not a positive hex number.
	ErrBadSerial = errors.New("malformed serial")
	// ErrNotFound: no certificate with that serial was issued here.
	ErrNotFound = errors.New("no such certificate")
	// ErrNotPermitted: the caller may not revoke that certificate (not
	// theirs).
	ErrNotPermitted = errors.New("not permitted to revoke the certificate")
	// ErrAlreadyRevoked: the certificate is revoked already (revocation is
	// final).
	ErrAlreadyRevoked = errors.New("certificate already revoked")
)

// Refusal is a revocation refused: Reason is the rule that refused it (one
// of the Err sentinels of this package) and Detail what the caller is told.
type Refusal struct {
	Reason error
	Detail string
}

// Error returns the detail.
func (r *Refusal) Error() string { return r.Detail }

// Unwrap returns the reason, for errors.Is.
func (r *Refusal) Unwrap() error { return r.Reason }

// httpStatus is the HTTP status of a refusal for reason: the answer of the
// API, and the "status" of the refusal's audit record whichever way the
// revocation came (API or `thiqa revoke`), as it always was.
func httpStatus(reason error) int {
	switch {
	case errors.Is(reason, ErrBadReason), errors.Is(reason, ErrBadSerial):
		return http.StatusBadRequest
	case errors.Is(reason, ErrNotFound):
		return http.StatusNotFound
	case errors.Is(reason, ErrNotPermitted):
		return http.StatusForbidden
	case errors.Is(reason, ErrAlreadyRevoked):
		return http.StatusConflict
	}
	return http.StatusInternalServerError
}
