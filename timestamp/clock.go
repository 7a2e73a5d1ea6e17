package timestamp

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"
)

// ClockStatus is what a clock check found.
type ClockStatus struct {
	// InSync is true when the clock is known to be within the declared
	// accuracy of UTC.
	InSync bool
	// Offset is the estimated offset from the reference (for chrony, the
	// bound |offset| + root dispersion + root delay/2).
	Offset time.Duration
	// Source names the reference (for example the NTP server).
	Source string
	// CheckedAt is when the check ran.
	CheckedAt time.Time
	// Reason says why the clock is not in sync; empty when it is.
	Reason string
}

// ClockChecker tells whether the TSA clock is within the declared accuracy
// (EN 319 421 §7.7.2). An error means the check itself failed; the TSA
// treats it as out of sync.
type ClockChecker interface {
	Check(ctx context.Context) (ClockStatus, error)
}

// StaticChecker is a ClockChecker whose answer is set by hand: for tests and
// development machines without a disciplined clock. It is safe for
// concurrent use.
type StaticChecker struct {
	inSync atomic.Bool
}

// NewStaticChecker returns a StaticChecker answering inSync.
func NewStaticChecker(inSync bool) *StaticChecker {
	s := &StaticChecker{}
	s.inSync.Store(inSync)
	return s
}

// Set changes the answer.
func (s *StaticChecker) Set(inSync bool) { s.inSync.Store(inSync) }

// Check returns the configured answer.
func (s *StaticChecker) Check(context.Context) (ClockStatus, error) {
	st := ClockStatus{InSync: s.inSync.Load(), Source: "static", CheckedAt: time.Now()}
	if !st.InSync {
		st.Reason = "clock declared out of sync"
	}
	return st, nil
}

// CachedChecker wraps a ClockChecker so that the hot path reads a cached
// answer: the inner check runs at most once per interval (by the first
// caller that finds the answer due, the others keep the cached one), and an
// answer older than maxAge, or a failed check, counts as out of sync.
//
// A step of the wall clock since the cached answer (NTP or an operator
// setting it, a virtual machine resuming) voids that answer: every Check
// compares the wall time elapsed since the last check with the monotonic
// time elapsed, which slewing changes alike and only a step sets apart;
// when they differ by more than maxStep the inner check runs again at once
// (the kernel flags a clock set by hand unsynchronised), and until it has
// answered the clock counts as out of sync. So no token carries a stepped
// time for up to an interval on the strength of a check made before.
type CachedChecker struct {
	inner    ClockChecker
	interval time.Duration
	maxAge   time.Duration
	timeout  time.Duration
	now      func() time.Time
	// mono is the monotonic time elapsed since an origin (never stepped)
	// at t, a reading of now: wall and monotonic time come from the same
	// reading, so that a caller descheduled between two reads (a loaded
	// server) does not look like a step.
	mono func(t time.Time) time.Duration

	refresh sync.Mutex
	cur     atomic.Pointer[cachedStatus]
}

// cachedStatus is a check's answer and the monotonic time it was made at.
type cachedStatus struct {
	st   ClockStatus
	mono time.Duration
}

// maxStep is the largest difference between the wall and the monotonic
// time elapsed since the last check that is not taken as a step of the
// wall clock (both are read apart by nanoseconds; slewing moves both).
const maxStep = 10 * time.Millisecond

// NewCachedChecker returns a CachedChecker re-checking inner every interval
// and refusing answers older than maxAge (at least interval).
func NewCachedChecker(inner ClockChecker, interval, maxAge time.Duration) (*CachedChecker, error) {
	if inner == nil {
		return nil, errors.New("timestamp: inner clock checker is nil")
	}
	if interval <= 0 || maxAge < interval {
		return nil, fmt.Errorf("timestamp: clock check interval %v and max age %v: need 0 < interval <= max age", interval, maxAge)
	}
	origin := time.Now()
	return &CachedChecker{inner: inner, interval: interval, maxAge: maxAge, timeout: max(interval, 2*time.Second), now: time.Now,
		mono: func(t time.Time) time.Duration { return t.Sub(origin) }}, nil // both carry a monotonic reading
}

// read reads the clock once: its wall time and, from the same reading, the
// monotonic time since the origin.
func (c *CachedChecker) read() (time.Time, time.Duration) {
	t := c.now()
	return t, c.mono(t)
}

// step returns how far the wall clock stepped between cur's check and the
// reading (now, mono): wall time elapsed minus monotonic time elapsed.
func step(cur *cachedStatus, now time.Time, mono time.Duration) time.Duration {
	wall := now.Round(0).Sub(cur.st.CheckedAt.Round(0)) // Round(0): the wall readings, not the monotonic ones
	return wall - (mono - cur.mono)
}

// stepped reports whether the wall clock stepped by more than maxStep
// between cur's check and the reading (now, mono).
func stepped(cur *cachedStatus, now time.Time, mono time.Duration) (time.Duration, bool) {
	d := step(cur, now, mono)
	return d, d > maxStep || d < -maxStep
}

// Refresh runs the inner check now and caches its answer.
func (c *CachedChecker) Refresh(ctx context.Context) ClockStatus {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), c.timeout)
	defer cancel()
	st, err := c.inner.Check(ctx)
	var mono time.Duration
	st.CheckedAt, mono = c.read()
	if err != nil {
		st.InSync = false
		st.Reason = "clock check failed: " + err.Error()
	}
	c.cur.Store(&cachedStatus{st: st, mono: mono})
	return st
}

// Check returns the cached answer, refreshing it when due.
func (c *CachedChecker) Check(ctx context.Context) (ClockStatus, error) {
	cur := c.cur.Load()
	// One reading of the clock for every comparison below: readings taken
	// in the same order on both sides differ by both clocks alike.
	now, mono := c.read()
	due := func(cur *cachedStatus) bool {
		if cur == nil || mono-cur.mono >= c.interval {
			return true
		}
		_, s := stepped(cur, now, mono)
		return s
	}
	if due(cur) {
		if c.refresh.TryLock() {
			// Re-read: another caller may have refreshed meanwhile.
			if cur = c.cur.Load(); due(cur) {
				c.Refresh(ctx)
				cur = c.cur.Load()
			}
			c.refresh.Unlock()
		} else if cur == nil {
			// First check still running elsewhere: wait for it.
			c.refresh.Lock()
			cur = c.cur.Load()
			c.refresh.Unlock()
		}
	}
	if cur == nil {
		return ClockStatus{Reason: "clock not checked yet"}, nil
	}
	st := cur.st
	if d, s := stepped(cur, now, mono); s {
		// Another caller is re-checking: the answer before the step no
		// longer holds.
		st.InSync = false
		st.Reason = fmt.Sprintf("the clock stepped by %v since the last check; checking it again", d.Round(time.Millisecond))
		return st, nil
	}
	if age := mono - cur.mono; age > c.maxAge {
		st.InSync = false
		st.Reason = fmt.Sprintf("last clock check is stale (%v old)", age.Round(time.Millisecond))
	}
	return st, nil
}
