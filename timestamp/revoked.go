package timestamp

import (
	"context"
	"encoding/hex"
	"math/big"
	"time"

	"github.com/thiqa/thiqa/internal/retry"
)

// RenewReasonRevoked is the reason a renewal's audit record (ActionRenewUnit,
// detail "reason") gives when the unit it replaced was revoked.
const RenewReasonRevoked = "revoked"

// revokedRetry is how long RenewLoop waits before it tries again to renew
// a revoked unit after a failure (the CA or the token down); each failure
// in a row doubles it, up to revokedRetryMax.
const revokedRetry = 10 * time.Second

// revokedRetryMax bounds RenewLoop's wait between failed renewals of a
// revoked unit: it serves again within that much of the CA's return.
const revokedRetryMax = 2 * time.Minute

// backoff is the wait after failures+1 failures in a row: first, doubled
// failures times, at most revokedRetryMax.
func backoff(first time.Duration, failures int) time.Duration {
	return retry.Backoff(first, revokedRetryMax, failures)
}

// Revoked is told that the certificate with that serial was revoked (the
// revocation service's notice, within about a second on every node; cmd/thiqa
// wires it). When it is the certificate of the unit in use, that unit signs
// no more tokens (systemFailure, HTTP 503), /readyz fails, and RenewLoop
// renews the unit with a new key at once; when it is the unit that one
// replaced, that unit never signs again. It reports whether serial was one
// of them. It reads nothing from the store: requests only look at a flag.
func (s *Service) Revoked(serial *big.Int) bool {
	g := s.cur.Load()
	if g == nil || serial == nil {
		return false
	}
	found := false
	if p := g.previous; p != nil && p.unit.Cert.SerialNumber.Cmp(serial) == 0 {
		s.markRevoked(p, false)
		found = true
	}
	if g.unit.Cert.SerialNumber.Cmp(serial) == 0 {
		s.markRevoked(g, true)
		found = true
	}
	return found
}

// markRevoked stops g's unit from signing; inUse says it is the current
// unit, which RenewLoop then renews at once.
func (s *Service) markRevoked(g *generation, inUse bool) {
	if g.auth.revoked.Swap(true) {
		return
	}
	serial := hex.EncodeToString(g.unit.Cert.SerialNumber.Bytes())
	if !inUse {
		s.log.Warn("the TSA unit replaced last was revoked: it never signs again", "serial", serial)
		return
	}
	s.log.Error("the TSA unit certificate was revoked: no time-stamps with it; renewing the unit with a new key now",
		"serial", serial, "key", g.unit.Key.URI)
	select {
	case s.kick <- struct{}{}:
	default: // a check is asked for already
	}
}

// revokedInUse reports whether the unit in use is revoked (not replaced
// yet).
func (s *Service) revokedInUse() bool {
	g := s.cur.Load()
	return g != nil && g.auth.revoked.Load()
}

// checkRevoked asks ServiceOptions.Status whether the unit in use, or the
// one it replaced, was revoked: a node that missed the notice (it was
// down, or it runs no revocation poller) finds out at its next renewal
// check, and at start (NewService checks for renewal before it serves).
func (s *Service) checkRevoked(ctx context.Context) {
	g := s.cur.Load()
	if s.o.Status == nil || g == nil {
		return
	}
	for _, x := range []*generation{g.previous, g} {
		if x == nil || x.auth.revoked.Load() {
			continue
		}
		revoked, err := s.o.Status.UnitRevoked(ctx, x.unit.Cert)
		if err != nil {
			s.log.Warn("cannot tell whether the TSA unit certificate was revoked", "serial", hex.EncodeToString(x.unit.Cert.SerialNumber.Bytes()), "err", err)
			continue
		}
		if revoked {
			s.markRevoked(x, x == g)
		}
	}
}
