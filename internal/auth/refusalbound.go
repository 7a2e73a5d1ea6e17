package auth

import (
	"errors"
	"net/http"

	"github.com/thiqa/thiqa/internal/audit"
	"github.com/thiqa/thiqa/internal/clientip"
)

// The budget of recorded refusals of callers who did not authenticate (no
// credentials, refused ones, or ones that cannot be checked now): anyone
// may send such requests, as many as they like, and the audit log is not
// theirs to fill. One client address gets the budget every service gives
// anonymous refusals (ratelimit.NewAnonymousRefusalBudget: 10 records at
// once, then one every 10 s); past that only the first refusal of each
// run is recorded. Over all addresses together at most
// ratelimit.OverallBurst at once and ratelimit.OverallRate a second are
// recorded; past that none, and the next record says how many were left
// out (unrecordedOverall). Every refusal is answered as always and counted
// in thiqa_auth_requests_total. The refusals of authenticated callers (403)
// are all recorded, and so are those of credentials that verified but are
// refused (Identified: an expired or revoked token of a trusted issuer, an
// expired or revoked client certificate): they name who presented them,
// and a revoked one in use may be a stolen key.
//
// recordUnauthenticated records e, a refusal of a caller who did not
// authenticate, with details d, within the budgets of its client address
// and of all addresses together. It reports whether the request may be
// answered: false when the record was due and could not be written (the
// answer, 500, has been written), true when it was written or not due.
// The refusal of identified credentials (identifiedErr) is always due.
func (a *Authenticator) recordUnauthenticated(w http.ResponseWriter, r *http.Request, e audit.Entry, d refusal, identifiedErr bool) bool {
	if a.audit == nil {
		return true
	}
	if identifiedErr {
		e.Details = d
		return a.record(w, r, e)
	}
	v := a.refusals.Take(clientip.FromRequest(r).Key())
	if !v.Record {
		return true
	}
	d.UnrecordedOverall = v.Unrecorded
	if v.Past {
		d.Note = "further refusals of this address in a row are counted in thiqa_auth_requests_total, not recorded"
	}
	e.Details = d
	if !a.record(w, r, e) {
		v.Undo()
		return false
	}
	return true
}

// identifiedError marks the refusal of credentials that verified (a
// token's signature by a trusted issuer's key, a client certificate's
// chain and its key in the TLS handshake) but are refused all the same:
// expired, revoked, claims that do not hold. Its text is its reason's.
type identifiedError struct{ err error }

func (e *identifiedError) Error() string { return e.err.Error() }
func (e *identifiedError) Unwrap() error { return e.err }

// identified marks err (nil stays nil) as the refusal of credentials that
// verified.
func identified(err error) error {
	if err == nil {
		return nil
	}
	return &identifiedError{err: err}
}

// Identified reports whether err, an error of Authenticate, refuses
// credentials that verified (a token of a trusted issuer that expired or
// whose grant was revoked, a revoked or expired client certificate of a
// configured client CA, or one that matches no role rule): they name who
// presented them, so their refusals
// are recorded every time, not within the budget of anonymous ones.
func Identified(err error) bool {
	var e *identifiedError
	return errors.As(err, &e)
}
