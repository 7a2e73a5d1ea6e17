package ocsp

import (
	"context"
	"errors"
	"fmt"
	"math/big"
	"sync"
	"sync/atomic"
	"time"

	"github.com/thiqa/thiqa/internal/retry"
)

// PresignIssuer signs a response for every certificate of one CA, for each
// pre-signed hash algorithm, with PresignWorkers signatures in flight (an
// HSM signs faster with a session per goroutine), and caches them, until
// the cache is full: the other certificates are signed on demand, so a run
// costs at most about the cache's capacity in signatures and memory. It
// returns the number signed; the first failure stops the run.
func (r *Responder) PresignIssuer(ctx context.Context, name string) (int, error) {
	is, ok := r.issuers[name]
	if !ok {
		return 0, fmt.Errorf("OCSP responder is not authoritative for %q", name)
	}
	start := time.Now()
	// Every response of this run has a nextUpdate at or after this one.
	earliestNext := r.now().UTC().Truncate(time.Second).Add(r.set.Validity)
	if na := is.signing.Load().cert.NotAfter; earliestNext.After(na) {
		earliestNext = na
	}
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	type job struct {
		serial *big.Int
		st     Status
	}
	jobs := make(chan job, 4*r.set.PresignWorkers)
	var n atomic.Int64
	var wg sync.WaitGroup
	for range r.set.PresignWorkers {
		wg.Go(func() {
			for j := range jobs {
				for _, h := range r.set.PresignHashes {
					if ctx.Err() != nil {
						break
					}
					if _, err := r.signStatus(ctx, is, h, j.serial, j.st, sigPresign); err != nil {
						cancel(err)
						break
					}
					n.Add(1)
				}
			}
		})
	}
	full := false
	err := r.src.AllStatuses(ctx, name, func(serial *big.Int, st Status) error {
		if st.State != Good && st.State != Revoked {
			return nil
		}
		if r.cache.Full() {
			full = true
			return errCacheFull
		}
		if st.State == Revoked && st.RevokedAt.IsZero() {
			return fmt.Errorf("serial %x revoked without a time", serial)
		}
		select {
		case jobs <- job{new(big.Int).Set(serial), st}: // the source may reuse its value
			return nil
		case <-ctx.Done():
			return context.Cause(ctx)
		}
	})
	close(jobs)
	wg.Wait()
	if errors.Is(err, errCacheFull) {
		err = nil
	}
	if cause := context.Cause(ctx); err == nil && cause != nil {
		err = cause
	}
	r.m.presigned(name, time.Since(start))
	if err != nil {
		return int(n.Load()), fmt.Errorf("pre-signing %s: %w", name, err)
	}
	r.m.presignedUntil(name, earliestNext)
	if full {
		r.log.InfoContext(ctx, "OCSP response cache full: pre-signing stopped, the other certificates are signed on demand",
			"ca", name, "responses", n.Load(), "cached", r.cache.Len(), "seconds", time.Since(start).Seconds())
	} else {
		r.log.InfoContext(ctx, "OCSP responses pre-signed", "ca", name, "responses", n.Load(), "seconds", time.Since(start).Seconds())
	}
	return int(n.Load()), nil
}

// errCacheFull stops a pre-signing run when the cache has no more room.
var errCacheFull = errors.New("OCSP response cache full")

// PresignAll pre-signs the responses of every CA.
func (r *Responder) PresignAll(ctx context.Context) error {
	var errs []error
	for name := range r.issuers {
		if _, err := r.PresignIssuer(ctx, name); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// RenewDue asks renewer for a new responder certificate for every CA whose
// current one expires within RenewBefore or was revoked (Revoked), swaps
// it in and re-signs that CA's responses. It reports the CAs whose responder it replaced (renewed
// here or adopted from another instance); a CA whose responder another
// instance is renewing keeps its current one until a later call.
func (r *Responder) RenewDue(ctx context.Context, renewer ResponderRenewer) ([]string, error) {
	var renewed []string
	var errs []error
	for name, is := range r.issuers {
		cur := is.signing.Load()
		current, revoked := cur.cert, cur.revoked.Load()
		if !revoked && r.now().Add(r.set.RenewBefore).Before(current.NotAfter) {
			continue
		}
		var rn ResponderRenewal
		var err error
		if rr, ok := renewer.(RevokedRenewer); ok && revoked {
			rn, err = rr.RenewRevokedResponder(ctx, name, current)
		} else {
			rn, err = renewer.RenewResponder(ctx, name, current)
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("renewing responder of %s: %w", name, err))
			continue
		}
		rc := rn.Responder
		if rc.Cert == nil {
			continue // another instance renews it: adopted at a later check
		}
		sg, err := newSigning(rc, is.cert)
		if err != nil {
			errs = append(errs, fmt.Errorf("renewed responder of %s: %w", name, err))
			continue
		}
		// The one it replaces still signs while this node's clock is
		// before the new one's notBefore (a backward step): signing.at.
		prev := *is.signing.Load()
		prev.previous = nil
		sg.previous = &prev
		is.signing.Store(sg)
		renewed = append(renewed, name)
		switch {
		case rn.Adopted:
			r.log.InfoContext(ctx, "OCSP responder certificate adopted: another instance renewed it", "ca", name, "notAfter", rc.Cert.NotAfter, "previousRevoked", revoked)
		case revoked:
			r.log.WarnContext(ctx, "OCSP responder certificate renewed: the previous one was revoked; the new one has a new key", "ca", name, "notAfter", rc.Cert.NotAfter)
		default:
			r.log.InfoContext(ctx, "OCSP responder certificate renewed", "ca", name, "notAfter", rc.Cert.NotAfter)
		}
		if _, err := r.PresignIssuer(ctx, name); err != nil {
			errs = append(errs, err)
		}
	}
	return renewed, errors.Join(errs...)
}

// Presigner keeps the cache fresh: a pre-signing run at start and every
// RefreshEvery (up to the cache's capacity; cached responses read close to
// their nextUpdate are re-signed on demand), and a responder-certificate
// renewal check every minute, at once when a responder is revoked
// (Responder.Revoked), and then every second until it is replaced (another
// instance renews it) or every revokedRetry after a failure.
type Presigner struct {
	r       *Responder
	renewer ResponderRenewer
	// revokedRetry is the first wait after a failed renewal while a
	// revoked responder is in use (the const revokedRetry; tests shorten
	// it); failures counts those failures in a row (Run's goroutine only).
	revokedRetry time.Duration
	failures     int
}

// NewPresigner returns a presigner for r; renewer may be nil (no renewal).
func NewPresigner(r *Responder, renewer ResponderRenewer) *Presigner {
	return &Presigner{r: r, renewer: renewer, revokedRetry: revokedRetry}
}

// Run works until ctx ends; failures are logged and retried next round.
func (p *Presigner) Run(ctx context.Context) error {
	p.renew(ctx)
	if err := p.r.PresignAll(ctx); err != nil {
		p.r.log.ErrorContext(ctx, "OCSP pre-signing incomplete", "err", err)
	}
	refresh := time.NewTicker(p.r.set.RefreshEvery)
	defer refresh.Stop()
	check := time.NewTicker(time.Minute)
	defer check.Stop()
	retry := time.NewTimer(time.Hour)
	retry.Stop()
	defer retry.Stop()
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-check.C:
			p.renewRetrying(ctx, retry)
		case <-p.r.renewNow:
			p.renewRetrying(ctx, retry)
		case <-retry.C:
			p.renewRetrying(ctx, retry)
		case <-refresh.C:
			if err := p.r.PresignAll(ctx); err != nil {
				p.r.log.ErrorContext(ctx, "OCSP pre-signing incomplete", "err", err)
			}
		}
	}
}

// revokedRetry is how long the Presigner waits before it tries again to
// renew a revoked responder after a failure (the CA or the token down);
// each failure in a row doubles it, up to revokedRetryMax.
const revokedRetry = 10 * time.Second

// revokedRetryMax bounds the Presigner's wait between failed renewals of
// a revoked responder: it answers again within that much of the CA's
// return.
const revokedRetryMax = 2 * time.Minute

// backoff is the wait after failures+1 failures in a row: first, doubled
// failures times, at most revokedRetryMax.
func backoff(first time.Duration, failures int) time.Duration {
	return retry.Backoff(first, revokedRetryMax, failures)
}

func (p *Presigner) renew(ctx context.Context) error {
	if p.renewer == nil {
		return nil
	}
	_, err := p.r.RenewDue(ctx, p.renewer)
	if err != nil {
		p.r.log.ErrorContext(ctx, "OCSP responder renewal failed", "err", err)
	}
	return err
}

// renewRetrying renews and, while a revoked responder is still in use,
// sets retry: a second (another instance renews it), or after a failure
// revokedRetry, doubled at each failure in a row up to revokedRetryMax.
func (p *Presigner) renewRetrying(ctx context.Context, retry *time.Timer) {
	err := p.renew(ctx)
	if p.renewer == nil || !p.r.revokedInUse() {
		p.failures = 0
		return
	}
	wait := time.Second
	if err != nil {
		wait = backoff(p.revokedRetry, p.failures)
		p.failures++
	}
	retry.Reset(wait)
}
