package revocation

import (
	"errors"
	"testing"
	"time"
)

// TestRevocationPollWindowAndRetry: a poll looks back two intervals even
// when they are longer than pollWindow, and a revocation whose responses
// could not be re-signed is retried on later polls however old it gets,
// until it succeeds.
func TestRevocationPollWindowAndRetry(t *testing.T) {
	now := time.Date(2026, 11, 22, 12, 0, 0, 0, time.UTC)
	rows := []Revocation{{Serial: "0a", CA: "citizen", Recorded: now.Add(-4 * time.Minute)}}
	var asked []time.Time
	failures := 3
	var notified []string
	p := revocationPoll{
		lookback: max(pollWindow, 2*5*time.Minute), // pollEvery 5m
		seen:     &seenRevocations{m: map[string]time.Time{}},
		fetch: func(from time.Time) ([]Revocation, error) {
			asked = append(asked, from)
			var out []Revocation
			for _, r := range rows {
				if !r.Recorded.Before(from) {
					out = append(out, r)
				}
			}
			return out, nil
		},
		notify: func(r *Revocation) bool {
			notified = append(notified, r.Serial)
			if failures > 0 {
				failures--
				return false
			}
			return true
		},
		logErr: func(err error) { t.Errorf("unexpected poll error: %v", err) },
	}
	// The revocation is 4 minutes old: outside pollWindow, inside two intervals.
	p.poll(now)
	if len(notified) != 1 {
		t.Fatalf("a revocation 4 minutes old with pollEvery 5m was not seen: notified %v", notified)
	}
	// It keeps failing; an hour later it is still retried.
	p.poll(now.Add(30 * time.Minute))
	p.poll(now.Add(time.Hour))
	if len(notified) != 3 {
		t.Fatalf("failed re-signing not retried: notified %v (asked from %v)", notified, asked)
	}
	// The next try succeeds; the retry point is cleared.
	p.poll(now.Add(2 * time.Hour))
	if len(notified) != 4 || !p.retryFrom.IsZero() {
		t.Fatalf("after success: notified %v, retryFrom %v", notified, p.retryFrom)
	}
	// Back to the plain window.
	p.poll(now.Add(3 * time.Hour))
	if got := asked[len(asked)-1]; !got.Equal(now.Add(3*time.Hour - p.lookback)) {
		t.Fatalf("window after success starts at %v", got)
	}
	// A failing query keeps the retry point.
	p.retryFrom = now
	p.fetch = func(time.Time) ([]Revocation, error) { return nil, errors.New("db down") }
	p.logErr = func(error) {}
	p.poll(now.Add(4 * time.Hour))
	if !p.retryFrom.Equal(now) {
		t.Fatalf("a failed query dropped the retry point: %v", p.retryFrom)
	}
}

// TestPollCatchesUpAfterAnOutage: revocations another instance recorded
// while this one could not read the database (a partition, a failover
// longer than the lookback) are picked up once it can again.
func TestPollCatchesUpAfterAnOutage(t *testing.T) {
	start := time.Unix(1_700_000_000, 0)
	every := 2 * time.Second
	rows := []Revocation{{Serial: "01", Recorded: start.Add(5 * time.Second)}}
	down := true
	var notified []string
	var errs int
	p := revocationPoll{
		lookback: max(pollWindow, 2*every),
		seen:     &seenRevocations{m: map[string]time.Time{}},
		fetch: func(from time.Time) ([]Revocation, error) {
			if down {
				return nil, errors.New("connection refused")
			}
			var out []Revocation
			for _, r := range rows {
				if !r.Recorded.Before(from) {
					out = append(out, r)
				}
			}
			return out, nil
		},
		notify: func(r *Revocation) bool { notified = append(notified, r.Serial); return true },
		logErr: func(error) { errs++ },
	}
	// The database is out of reach from start+2s to start+5min.
	now := start.Add(every)
	for ; now.Before(start.Add(5 * time.Minute)); now = now.Add(every) {
		p.poll(now)
	}
	down = false
	p.poll(now)
	if len(notified) != 1 {
		t.Fatalf("notified %v after the outage, want the revocation recorded during it", notified)
	}
	if errs == 0 {
		t.Error("the failed polls were not logged")
	}
}
