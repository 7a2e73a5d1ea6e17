package timestamp

import (
	"context"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/thiqa/thiqa/internal/audit"
)

// ActionClock is the audit action of a change of the TSA clock's state as
// the service sees it (EN 319 421: the loss of synchronisation, and its
// return, are logged): outcome failure when the clock stops being known to
// be within the declared accuracy (every request is then refused with
// timeNotAvailable), success when it is again, and for the first check of
// a service.
const ActionClock = "timestamp.clock"

// clockSettle is how long the clock must answer in sync, by the checks'
// own times (ClockStatus.CheckedAt), before its return is recorded. A
// clock flapping at the edge of the declared accuracy would otherwise
// leave two records per check interval (a second by default) for as long
// as it flapped: it leaves its loss, then one return once it holds. The
// losses in between are counted in the return's record (lossesUnrecorded).
const clockSettle = time.Minute

// Clock states of auditedClock.recorded.
const (
	clockUnknown int32 = iota
	clockInSync
	clockOutOfSync
)

// auditedClock is a ClockChecker that records the changes of its inner
// checker's answer (ActionClock) before the answer is used: a loss at
// once, a return once it held for clockSettle. A check that changes
// nothing while in sync costs one atomic load.
type auditedClock struct {
	inner ClockChecker
	audit AuditLog
	log   *slog.Logger
	// settle is clockSettle (tests: shorter).
	settle time.Duration
	// recorded is the state the log last recorded.
	recorded atomic.Int32

	mu sync.Mutex // guards what follows and serialises the records
	// since is the CheckedAt of the first in-sync answer after the
	// recorded loss (zero: none yet); losses counts the losses since
	// then that the log did not record.
	since  time.Time
	losses int
	// lastInSync is the last in-sync answer while a return settles.
	lastInSync ClockStatus
	// unreturned are the details added to the first record when the
	// log's last clock record, at start, was a loss with no return
	// after it (findUnreturnedLoss); nil otherwise.
	unreturned map[string]any
}

// findUnreturnedLoss looks up the log's last clock record at start: when
// it is a loss (a process crashed inside the settle minute, or was killed,
// before it recorded a return), the first record of this service says so.
// The log tells nothing of the clock between that loss and this start: the
// record says only that no return was recorded. A lookup that fails is
// logged and the start goes on (the first record is written as before).
func (c *auditedClock) findUnreturnedLoss(ctx context.Context, f audit.RecordFinder) {
	recs, err := f.FindAuditRecords(ctx, audit.Query{Actions: []string{ActionClock}, Limit: 1})
	if err != nil {
		c.log.WarnContext(ctx, "could not read the last clock record of the audit log", "action", ActionClock, "err", err)
		return
	}
	if len(recs) == 0 || recs[0].Outcome != audit.OutcomeFailure {
		return
	}
	c.unreturned = map[string]any{
		"previousLossUnreturned": true,
		"previousLossSeq":        recs[0].Seq,
		"previousLossAt":         recs[0].Time.UTC().Format(time.RFC3339Nano),
		"note": "the last clock record before this start is a loss with no return after it: the process that recorded it " +
			"ended without recording one (or another instance sharing the store is still out of sync); " +
			"whether its clock returned before it ended is not known",
	}
}

// newAuditedClock wraps inner so that its changes of state are recorded
// in a.
func newAuditedClock(inner ClockChecker, a AuditLog, log *slog.Logger) *auditedClock {
	return &auditedClock{inner: inner, audit: a, log: log, settle: clockSettle}
}

// Check answers as the inner checker does, recording a change of state
// first. A record that cannot be written is logged and tried again at the
// next check; the answer is unchanged (out of sync refuses anyway).
func (c *auditedClock) Check(ctx context.Context) (ClockStatus, error) {
	st, err := c.inner.Check(ctx)
	state, reason := clockInSync, st.Reason
	if err != nil || !st.InSync {
		state = clockOutOfSync
		if err != nil {
			reason = "clock check failed: " + err.Error()
		}
	}
	if c.recorded.Load() == state && state == clockInSync {
		return st, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	prev := c.recorded.Load()
	switch {
	case prev == clockOutOfSync && state == clockOutOfSync:
		if !c.since.IsZero() {
			c.since, c.losses = time.Time{}, c.losses+1 // lost again before it held
		}
		return st, err
	case prev == state:
		return st, err
	case prev == clockOutOfSync && !st.CheckedAt.IsZero():
		// Back in sync: recorded once it held for settle. A checker
		// that gives no time is taken at its word.
		if c.since.IsZero() || st.CheckedAt.Before(c.since) {
			c.since = st.CheckedAt
		}
		c.lastInSync = st
		if st.CheckedAt.Sub(c.since) < c.settle {
			return st, err
		}
	}
	c.record(ctx, prev, state, st, reason, nil)
	return st, err
}

// record writes the change from prev to state (st, and reason when out
// of sync) with extra details, and makes it the recorded state; c.mu is
// held. A record that cannot be written is logged: the next check tries
// again.
func (c *auditedClock) record(ctx context.Context, prev, state int32, st ClockStatus, reason string, extra map[string]any) {
	outcome := audit.OutcomeSuccess
	details := map[string]any{"inSync": state == clockInSync, "source": st.Source, "offset": st.Offset.String()}
	for k, v := range extra {
		details[k] = v
	}
	if !st.CheckedAt.IsZero() {
		details["checkedAt"] = st.CheckedAt.UTC().Format(time.RFC3339Nano)
	}
	if state == clockOutOfSync {
		outcome, details["reason"] = audit.OutcomeFailure, reason
	}
	if prev == clockOutOfSync && !c.since.IsZero() {
		details["inSyncSince"] = c.since.UTC().Format(time.RFC3339Nano)
	}
	if c.losses > 0 {
		details["lossesUnrecorded"] = c.losses
	}
	if prev == clockUnknown {
		details["first"] = true
		for k, v := range c.unreturned {
			details[k] = v
		}
	}
	if _, aerr := c.audit.Append(context.WithoutCancel(ctx), audit.Entry{Actor: AuditActor, Action: ActionClock, Object: "clock",
		Outcome: outcome, Details: details}); aerr != nil {
		c.log.ErrorContext(ctx, "audit append failed", "action", ActionClock, "err", aerr)
		return // the next check records it
	}
	c.recorded.Store(state)
	c.since, c.losses = time.Time{}, 0
	c.unreturned = nil
}

// stop records a return that was still settling (in sync since c.since,
// not yet for c.settle) when the service stops: else the log's last word
// on the clock would be its loss, though the time-stamps issued since the
// return were issued in sync, and the next start records only its own
// first check. The record says that the clock had not yet held
// (settled: false). Nothing is written when no return is pending.
func (c *auditedClock) stop(ctx context.Context) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.recorded.Load() != clockOutOfSync || c.since.IsZero() {
		return
	}
	c.record(ctx, clockOutOfSync, clockInSync, c.lastInSync, "", map[string]any{"settled": false,
		"note": "the service stopped before the clock held in sync for " + c.settle.String()})
}
