package timestamp

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"time"
)

// UnitRenewals records, for every instance of the TSA sharing one store,
// token and data folder (a cluster of `thiqa serve` nodes), which unit
// replaced which: of the instances that find a unit due at the same time,
// one claims its renewal and makes the new key and certificate, and the
// others adopt that unit instead of making their own. store implements it
// over the database.
type UnitRenewals interface {
	// ClaimRenewal claims for holder, until until, the renewal of the unit
	// whose certificate has the serial previous (hex). The claim is
	// granted when nobody else holds a live one (a claim whose until is
	// not after now has lapsed: its holder died) and the renewal is not
	// done. Once it is done, every claim gets the unit that replaced
	// previous instead.
	ClaimRenewal(ctx context.Context, previous, holder string, now, until time.Time) (RenewalClaim, error)
	// CompleteRenewal records next as the unit that replaced previous;
	// only the holder of the claim may.
	CompleteRenewal(ctx context.Context, previous, holder string, next RenewedUnit) error
	// ReleaseRenewal drops holder's claim on previous (the renewal
	// failed), so that any instance may try again at once.
	ReleaseRenewal(ctx context.Context, previous, holder string) error
}

// RenewalClaim is the answer to UnitRenewals.ClaimRenewal.
type RenewalClaim struct {
	// Claimed says the caller is to renew the unit.
	Claimed bool
	// Next is the unit that replaced it when the renewal is done; nil
	// while it is not.
	Next *RenewedUnit
}

// RenewedUnit is a renewed unit as the instances share it.
type RenewedUnit struct {
	// KeyLabel is the label of its key on the token.
	KeyLabel string
	// Cert is its certificate (DER); Chain its issuing CA certificates
	// (DER, one after the other), as chain.pem holds them.
	Cert, Chain []byte
}

// renewalClaimTTL is how long a claim to renew the unit holds: longer
// than one renewal takes (RenewLoop gives it two minutes), so that only a
// dead holder's claim lapses.
const renewalClaimTTL = 5 * time.Minute

// claimRetry is how often NewService asks again while another instance
// renews an expired unit.
const claimRetry = time.Second

// maxAdoptions bounds how many successive renewals one check follows (an
// instance that was down through several).
const maxAdoptions = 16

// newHolder names this instance in its claims.
func newHolder() (string, error) {
	var b [8]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", fmt.Errorf("naming the TSA instance: %w", err)
	}
	return hex.EncodeToString(b[:]), nil
}

// renewed is what replace did with a unit due.
type renewed int

const (
	renewedPending renewed = iota // another instance renews it: nothing yet
	renewedHere                   // this instance made the new unit
	renewedAdopted                // another instance made it; this one adopted it
)

// replace replaces old, due at now: alone (no Renewals), it renews it;
// in a cluster, it renews it when it wins the claim and otherwise adopts
// the unit the winner made (nil while the winner is still at it).
func (s *Service) replace(ctx context.Context, old *Unit, now time.Time) (*Unit, renewed, error) {
	if s.o.Renewals == nil {
		next, err := s.renew(ctx, old, now)
		return next, renewedHere, err
	}
	serial := hex.EncodeToString(old.Cert.SerialNumber.Bytes())
	claim, err := s.o.Renewals.ClaimRenewal(ctx, serial, s.holder, now, now.Add(renewalClaimTTL))
	if err != nil {
		return nil, renewedPending, fmt.Errorf("claiming the renewal of TSA unit %s: %w", serial, err)
	}
	if claim.Next != nil {
		next, err := s.o.Units.Adopt(ctx, *claim.Next)
		if err != nil {
			return nil, renewedPending, fmt.Errorf("adopting the unit that replaced TSA unit %s: %w", serial, err)
		}
		return next, renewedAdopted, nil
	}
	if !claim.Claimed {
		return nil, renewedPending, nil
	}
	next, err := s.renew(ctx, old, now)
	if err != nil {
		if rerr := s.o.Renewals.ReleaseRenewal(context.WithoutCancel(ctx), serial, s.holder); rerr != nil {
			s.log.Warn("releasing the claim to renew the TSA unit failed; another instance may take it over when it lapses", "serial", serial, "err", rerr)
		}
		return nil, renewedPending, err
	}
	rec := RenewedUnit{KeyLabel: next.Key.Label, Cert: next.Cert.Raw}
	for _, c := range next.Chain {
		rec.Chain = append(rec.Chain, c.Raw...)
	}
	if err := s.o.Renewals.CompleteRenewal(context.WithoutCancel(ctx), serial, s.holder, rec); err != nil {
		// The new unit serves here; the other instances renew again once
		// the claim lapses.
		s.log.Error("recording the renewed TSA unit for the other instances failed", "serial", serial, "err", err)
	}
	return next, renewedHere, nil
}
