package revocation

import (
	"context"
	"fmt"
	"sync"
	"time"
)

// seenRevocations remembers revocations whose responses were re-signed.
type seenRevocations struct {
	mu sync.Mutex
	m  map[string]time.Time
}

func (s *seenRevocations) add(serial string, at time.Time) {
	s.mu.Lock()
	s.m[serial] = at
	s.mu.Unlock()
}

func (s *seenRevocations) has(serial string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	_, ok := s.m[serial]
	return ok
}

func (s *seenRevocations) prune(before time.Time) {
	s.mu.Lock()
	for k, t := range s.m {
		if t.Before(before) {
			delete(s.m, k)
		}
	}
	s.mu.Unlock()
}

// pollWindow is how far back each poll looks: rows committed by other
// processes may carry slightly older recorded_at times than rows seen.
const pollWindow = 30 * time.Second

// pollBatch is how many revocations one query of a poll reads.
const pollBatch = 1000

// Poll re-signs, every interval until ctx ends, the responses of the
// revocations recorded by other processes (`thiqa revoke`, other
// instances), triggers their CRLs and has the status checker forget them;
// consequential revocations of a key compromise are revocations like any
// other here. Every few polls (sweepEvery) it also sweeps the keys blocked
// lately (all of them the first time) for certificates issued while the
// block was being recorded, and revokes those.
func (s *Service) Poll(ctx context.Context, every time.Duration) {
	t := time.NewTicker(every)
	defer t.Stop()
	p := revocationPoll{lookback: max(pollWindow, 2*every), seen: s.seen,
		fetch:  func(from time.Time) ([]Revocation, error) { return s.o.Store.RecordedSince(ctx, from, pollBatch) },
		notify: func(r *Revocation) bool { return s.notify(ctx, r) },
		logErr: func(err error) {
			if ctx.Err() == nil {
				s.log.ErrorContext(ctx, "polling revocations failed", "err", err)
			}
		}}
	var swept time.Time
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		now := time.Now()
		p.poll(now)
		if now.Sub(swept) >= sweepEvery(every) {
			since := now.Add(-sweepWindow)
			if swept.IsZero() {
				since = time.Unix(0, 0)
			}
			if err := s.sweep(ctx, since); err != nil {
				p.logErr(fmt.Errorf("sweeping blocked keys: %w", err))
			} else {
				swept = now
			}
		}
	}
}

// revocationPoll is the state of the revocation poller between polls.
// Each poll looks back at least lookback (two intervals: no revocation
// falls between two polls however long pollEvery is), and as far back as
// the oldest revocation whose responses could not be re-signed yet, so a
// failure is retried until it succeeds, not only within the window.
type revocationPoll struct {
	lookback  time.Duration
	retryFrom time.Time // zero: nothing to retry
	seen      *seenRevocations
	fetch     func(from time.Time) ([]Revocation, error)
	notify    func(*Revocation) bool
	logErr    func(error)
}

// poll reads the revocations recorded since the start of its window and
// notifies those not yet seen.
func (p *revocationPoll) poll(now time.Time) {
	from := now.Add(-p.lookback)
	if !p.retryFrom.IsZero() && p.retryFrom.Before(from) {
		from = p.retryFrom
	}
	var failedFrom time.Time
	complete := true
	for {
		rows, err := p.fetch(from)
		if err != nil {
			p.logErr(err)
			complete = false
			break
		}
		for i := range rows {
			if !p.seen.has(rows[i].Serial) && !p.notify(&rows[i]) && failedFrom.IsZero() {
				failedFrom = rows[i].Recorded
			}
		}
		if len(rows) < pollBatch {
			break
		}
		from = rows[len(rows)-1].Recorded
	}
	switch {
	case !failedFrom.IsZero():
		p.retryFrom = failedFrom.Add(-pollWindow)
	case !complete && p.retryFrom.IsZero():
		// The store could not be read (an outage, a partition from the
		// database): the next polls start where this one stopped, however
		// long it lasts, so revocations other instances recorded
		// meanwhile are not left behind the lookback.
		p.retryFrom = from
	case complete:
		p.retryFrom = time.Time{}
	}
	keep := now.Add(-2 * p.lookback)
	if !p.retryFrom.IsZero() && p.retryFrom.Before(keep) {
		keep = p.retryFrom.Add(-pollWindow)
	}
	p.seen.prune(keep)
}
