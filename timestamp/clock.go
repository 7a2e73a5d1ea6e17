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
type CachedChecker struct {
	inner    ClockChecker
	interval time.Duration
	maxAge   time.Duration
	timeout  time.Duration
	now      func() time.Time

	refresh sync.Mutex
	cur     atomic.Pointer[ClockStatus]
}

// NewCachedChecker returns a CachedChecker re-checking inner every interval
// and refusing answers older than maxAge (at least interval).
func NewCachedChecker(inner ClockChecker, interval, maxAge time.Duration) (*CachedChecker, error) {
	if inner == nil {
		return nil, errors.New("timestamp: inner clock checker is nil")
	}
	if interval <= 0 || maxAge < interval {
		return nil, fmt.Errorf("timestamp: clock check interval %v and max age %v: need 0 < interval <= max age", interval, maxAge)
	}
	return &CachedChecker{inner: inner, interval: interval, maxAge: maxAge, timeout: max(interval, 2*time.Second), now: time.Now}, nil
}

// Refresh runs the inner check now and caches its answer.
func (c *CachedChecker) Refresh(ctx context.Context) ClockStatus {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), c.timeout)
	defer cancel()
	st, err := c.inner.Check(ctx)
	st.CheckedAt = c.now()
	if err != nil {
		st.InSync = false
		st.Reason = "clock check failed: " + err.Error()
	}
	c.cur.Store(&st)
	return st
}

// Check returns the cached answer, refreshing it when due.
func (c *CachedChecker) Check(ctx context.Context) (ClockStatus, error) {
	cur := c.cur.Load()
	if cur == nil || c.now().Sub(cur.CheckedAt) >= c.interval {
		if c.refresh.TryLock() {
			// Re-read: another caller may have refreshed meanwhile.
			if cur = c.cur.Load(); cur == nil || c.now().Sub(cur.CheckedAt) >= c.interval {
				st := c.Refresh(ctx)
				cur = &st
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
	st := *cur
	if age := c.now().Sub(st.CheckedAt); age > c.maxAge {
		st.InSync = false
		st.Reason = fmt.Sprintf("last clock check is stale (%v old)", age.Round(time.Millisecond))
	}
	return st, nil
}
