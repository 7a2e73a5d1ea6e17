package timestamp

import (
	"context"
	"log/slog"
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

// Clock states of auditedClock.last.
const (
	clockUnknown int32 = iota
	clockInSync
	clockOutOfSync
)

// auditedClock is a ClockChecker that records each change of its inner
// checker's answer (ActionClock) before the answer is used. A check that
// changes nothing costs one atomic load.
type auditedClock struct {
	inner ClockChecker
	audit AuditLog
	log   *slog.Logger
	last  atomic.Int32
}

// newAuditedClock wraps inner so that its changes of state are recorded
// in a.
func newAuditedClock(inner ClockChecker, a AuditLog, log *slog.Logger) *auditedClock {
	return &auditedClock{inner: inner, audit: a, log: log}
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
	prev := c.last.Load()
	if prev == state || !c.last.CompareAndSwap(prev, state) {
		return st, err
	}
	outcome := audit.OutcomeSuccess
	details := map[string]any{"inSync": state == clockInSync, "source": st.Source, "offset": st.Offset.String()}
	if !st.CheckedAt.IsZero() {
		details["checkedAt"] = st.CheckedAt.UTC().Format(time.RFC3339Nano)
	}
	if state == clockOutOfSync {
		outcome, details["reason"] = audit.OutcomeFailure, reason
	}
	if prev == clockUnknown {
		details["first"] = true
	}
	if _, aerr := c.audit.Append(context.WithoutCancel(ctx), audit.Entry{Actor: AuditActor, Action: ActionClock, Object: "clock",
		Outcome: outcome, Details: details}); aerr != nil {
		c.log.ErrorContext(ctx, "audit append failed", "action", ActionClock, "err", aerr)
		c.last.CompareAndSwap(state, prev) // the next check records it
	}
	return st, err
}
