package auth

import (
	"net/http"
	"time"

	"github.com/thiqa/thiqa/internal/audit"
	"github.com/thiqa/thiqa/internal/clientip"
	"github.com/thiqa/thiqa/internal/ratelimit"
)

// The budget of recorded refusals of callers who did not authenticate (no
// credentials, refused ones, or ones that cannot be checked now): anyone
// may send such requests, as many as they like, and the audit log is not
// theirs to fill. One client address gets 10 records at once, then one
// every 10 s, as EST's and CMP's; past that only the first refusal of each
// run is recorded. Over all addresses together at most
// ratelimit.OverallBurst at once and ratelimit.OverallRate a second are
// recorded; past that none, and the next record says how many were left
// out (unrecordedOverall). Every refusal is answered as always and counted
// in thiqa_auth_requests_total. The refusals of authenticated callers (403)
// are all recorded.
const (
	unauthenticatedBurst = 10
	unauthenticatedRate  = 0.1
)

// newRefusalBudgets returns the per-address and overall budgets of
// recorded refusals of callers who did not authenticate.
func newRefusalBudgets(now func() time.Time) (*ratelimit.Limiter, *ratelimit.Overall) {
	return ratelimit.New(unauthenticatedRate, unauthenticatedBurst, now), ratelimit.NewOverall(ratelimit.OverallRate, ratelimit.OverallBurst, now)
}

// recordUnauthenticated records e, a refusal of a caller who did not
// authenticate, with details d, within the budgets of its client address
// and of all addresses together. It reports whether the request may be
// answered: false when the record was due and could not be written (the
// answer, 500, has been written), true when it was written or not due.
func (a *Authenticator) recordUnauthenticated(w http.ResponseWriter, r *http.Request, e audit.Entry, d refusal) bool {
	if a.audit == nil {
		return true
	}
	addr := clientip.FromRequest(r).Key()
	ok, past := a.refusals.Record(addr)
	if !ok {
		return true
	}
	ok, n := a.overall.Take()
	if !ok {
		return true
	}
	d.UnrecordedOverall = n
	if past {
		d.Note = "further refusals of this address in a row are counted in thiqa_auth_requests_total, not recorded"
	}
	e.Details = d
	if !a.record(w, r, e) {
		a.refusals.ResetStreak(addr)
		a.overall.Restore(n)
		return false
	}
	return true
}
