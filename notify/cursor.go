package notify

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/thiqa/thiqa/internal/audit"
)

// ActionRetire is the audit action of retiring the cursor (Retire).
const ActionRetire = "notify.cursor.retire"

// ErrEnabled is Retire's refusal while notifications are on in the
// configuration: the notifier would put the cursor back at once.
var ErrEnabled = errors.New("notify: notifications are enabled (notify.enabled)")

// ErrLeaseLive is (wrapped by) Retire's refusal while a node holds the
// lease by the database's clock, or held it less than RetireQuiet ago: it
// still delivers, or may (waiting between rounds), and would put the
// cursor back at the head, skipping the records written meanwhile. The
// error is a *LeaseError, which says whose lease and until when.
var ErrLeaseLive = errors.New("notify: a node still delivers notifications (its lease is live)")

// RetireQuiet is how long after a lease lapsed Retire still refuses. A
// node running with notifications on claims the lease at every round,
// and waits at most maxPause between rounds (while the gateway is out),
// so its lease may lapse for up to that long while it runs: a lease that
// lapsed less than RetireQuiet ago may be such a node's. A lease given up
// by a node that stopped (ReleaseLease) does not count.
const RetireQuiet = 2 * maxPause

// LeaseError is Retire's refusal (errors.Is ErrLeaseLive): Holder holds
// the lease until Until (Live), or held it until Until, less than
// RetireQuiet ago, by the database's clock.
type LeaseError struct {
	Holder string
	Until  time.Time
	Live   bool
}

// Error says whose lease, and until when.
func (e *LeaseError) Error() string {
	until := e.Until.UTC().Format(time.RFC3339)
	if e.Live {
		return fmt.Sprintf("%s holds the notification lease until %s (database clock): a node still delivers notifications", e.Holder, until)
	}
	return fmt.Sprintf("the notification lease of %s lapsed at %s (database clock), less than %s ago: a node with notifications on may be waiting between rounds", e.Holder, until, RetireQuiet)
}

// Is makes a LeaseError match ErrLeaseLive.
func (e *LeaseError) Is(target error) bool { return target == ErrLeaseLive }

// Cursor is where the notifier stands in the database: its cursor and
// lease (store: the notify_state row).
type Cursor struct {
	// Set is false when there is no cursor: the notifier never ran, or
	// its cursor was retired. The fields below are then zero.
	Set bool
	// Seq is the seq of the last audit record the notifier dealt with.
	Seq int64
	// Holder names the node that holds or last held the lease, and
	// LeaseUntil when its lease lapses or lapsed (zero when it gave it up);
	// LeaseLive says whether it is live now, by the database's clock.
	Holder     string
	LeaseUntil time.Time
	LeaseLive  bool
	// Head is the seq of the newest audit record (0: none).
	Head int64
}

// Lag is the number of audit records after the cursor (the head's seq
// less the cursor's, as thiqa_notify_lag_records); 0 without a cursor.
func (c Cursor) Lag() int64 {
	if !c.Set {
		return 0
	}
	return max(c.Head-c.Seq, 0)
}

// CursorStore reads and retires the notifier's cursor (package store).
type CursorStore interface {
	// NotifyCursor returns the cursor, its lease and the audit head.
	NotifyCursor(ctx context.Context) (Cursor, error)
	// RetireCursor deletes the cursor, unless a lease is live by the
	// database's clock or lapsed less than quiet ago (a *LeaseError,
	// nothing changed; a lease given up does not count), and appends the
	// audit records of the Sealer seal returns for the cursor deleted (its
	// Head read under the audit head's lock), in the same transaction.
	// Without a cursor it changes nothing and returns the zero Cursor.
	RetireCursor(ctx context.Context, quiet time.Duration, seal func(Cursor) (audit.Sealer, error)) (Cursor, error)
}

// Preparer prepares audit records that the store seals into the chain in
// the transaction of the change they record (*audit.Log).
type Preparer interface {
	Prepare(entries ...audit.Entry) (audit.Sealer, error)
}

// Status is what `thiqa notify status` shows.
type Status struct {
	// Enabled is notify.enabled in the configuration read.
	Enabled bool
	Cursor
}

// ReadStatus returns the notifier's status in st; enabled is whether the
// configuration turns notifications on.
func ReadStatus(ctx context.Context, st CursorStore, enabled bool) (Status, error) {
	c, err := st.NotifyCursor(ctx)
	if err != nil {
		return Status{}, fmt.Errorf("notify: reading the cursor: %w", err)
	}
	return Status{Enabled: enabled, Cursor: c}, nil
}

// statusJSON is the JSON form of Status.
type statusJSON struct {
	Enabled bool       `json:"enabled"`
	Cursor  *int64     `json:"cursor"`
	Head    int64      `json:"head"`
	Lag     int64      `json:"lag"`
	Lease   *leaseJSON `json:"lease"`
}

type leaseJSON struct {
	Holder string `json:"holder"`
	Until  string `json:"until,omitempty"`
	Live   bool   `json:"live"`
}

// WriteJSON writes s as a JSON object: enabled, cursor (null when none),
// head, lag, and lease (null when no cursor: holder, until in RFC 3339 UTC
// (absent when given up), live).
func (s Status) WriteJSON(w io.Writer) error {
	out := statusJSON{Enabled: s.Enabled, Head: s.Head, Lag: s.Lag()}
	if s.Set {
		seq := s.Seq
		out.Cursor = &seq
		out.Lease = &leaseJSON{Holder: s.Holder, Live: s.LeaseLive}
		if !s.LeaseUntil.IsZero() {
			out.Lease.Until = s.LeaseUntil.UTC().Format(time.RFC3339Nano)
		}
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(out)
}

// WriteText writes s for an operator: one line each.
func (s Status) WriteText(w io.Writer) error {
	on := "off (notify.enabled: false)"
	if s.Enabled {
		on = "on (notify.enabled: true)"
	}
	var err error
	p := func(format string, a ...any) {
		if err == nil {
			_, err = fmt.Fprintf(w, format, a...)
		}
	}
	p("notifications  %s\n", on)
	p("audit head     %d\n", s.Head)
	if !s.Set {
		p("cursor         none: the notifier never ran or its cursor was retired; its next run starts at the audit head\n")
		return err
	}
	p("cursor         %d (lag %d records)\n", s.Seq, s.Lag())
	switch {
	case s.LeaseLive:
		p("lease          held by %s until %s\n", s.Holder, s.LeaseUntil.UTC().Format(time.RFC3339))
	case s.LeaseUntil.IsZero():
		p("lease          free (given up by %s)\n", s.Holder)
	default:
		p("lease          free (%s's lapsed at %s)\n", s.Holder, s.LeaseUntil.UTC().Format(time.RFC3339))
	}
	if !s.Enabled && s.Lag() > 0 {
		p("note           audit archive stops at the cursor; if notifications are off for good: thiqa notify retire\n")
	}
	return err
}

// Retire deletes the notifier's cursor when notifications are off for
// good, so that `thiqa audit archive` no longer waits for it; turned on
// again, the notifier starts at the audit head. It refuses while enabled
// (ErrEnabled) or while a node holds the lease or held it less than
// RetireQuiet ago (ErrLeaseLive, a *LeaseError), changing nothing. The deletion and its audit record (ActionRetire, by actor,
// with the cursor's seq and the records after it, never to be told) are
// one transaction. Without a cursor it changes nothing and returns the
// zero Cursor.
func Retire(ctx context.Context, st CursorStore, log Preparer, actor string, enabled bool) (Cursor, error) {
	if enabled {
		return Cursor{}, ErrEnabled
	}
	c, err := st.RetireCursor(ctx, RetireQuiet, func(c Cursor) (audit.Sealer, error) {
		return log.Prepare(audit.Entry{Actor: actor, Action: ActionRetire, Object: "notify_state", Outcome: audit.OutcomeSuccess,
			Details: map[string]any{"cursor": c.Seq, "head": c.Head, "undelivered": c.Lag(), "holder": c.Holder}})
	})
	if err != nil {
		return Cursor{}, fmt.Errorf("notify: retiring the cursor: %w", err)
	}
	return c, nil
}
