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
