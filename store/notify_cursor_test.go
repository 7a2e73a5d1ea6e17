package store_test

import (
	"encoding/json"
	"errors"
	"log/slog"
	"testing"
	"time"

	"github.com/thiqa/thiqa/internal/audit"
	"github.com/thiqa/thiqa/notify"
	"github.com/thiqa/thiqa/store/storetest"
)

// TestNotifyRetireCursor: the notifier's cursor is retired only while no
// node holds the lease (by the database's clock), with its audit record
// (the cursor's seq, the records after it) in the same transaction; audit
// archive then sees no cursor; turned on again, the notifier starts at the
// audit head and tells nothing of what happened while it was off.
func TestNotifyRetireCursor(t *testing.T) {
	for _, d := range storetest.Dialects() {
		t.Run(d.Name, func(t *testing.T) {
			ctx := ctxT(t)
			db := storetest.Open(t, d.NewConfig(t))
			st := db.Notify()
			log := audit.New(db, slog.New(slog.DiscardHandler), nil, audit.Options{})
			defer log.Close()
			login := func() {
				t.Helper()
				if _, err := log.Append(ctx, audit.Entry{Actor: "citizen:12345678", Action: "oidc.login", Object: "tax", Outcome: "success"}); err != nil {
					t.Fatal(err)
				}
			}
			retire := func() (notify.Cursor, error) {
				return notify.Retire(ctx, st, log, "operator-1", false)
			}

			// No cursor: nothing to retire, no record.
			login()
			if c, err := retire(); err != nil || c.Set {
				t.Fatalf("retire without a cursor: %+v, %v", c, err)
			}
			if _, err := notify.Retire(ctx, st, log, "operator-1", true); !errors.Is(err, notify.ErrEnabled) {
				t.Fatalf("retire while enabled: %v", err)
			}

			g := newNotifyGateway(t)
			n := newNotifier(t, db, g, notify.Options{Holder: "node-1", Lease: time.Minute})
			drainNotifier(t, n) // the cursor at the head, the lease live
			cursor, err := st.NotifyCursor(ctx)
			if err != nil || !cursor.Set || cursor.Seq != cursor.Head || cursor.Holder != "node-1" || !cursor.LeaseLive || cursor.LeaseUntil.IsZero() {
				t.Fatalf("cursor after a round: %+v, %v", cursor, err)
			}
			if c, err := retire(); !errors.Is(err, notify.ErrLeaseLive) || c.Set {
				t.Fatalf("retire under a live lease: %+v, %v", c, err)
			}
			if c, err := st.NotifyCursor(ctx); err != nil || !c.Set {
				t.Fatalf("the cursor is gone after a refused retire: %+v, %v", c, err)
			}
			// Notifications turned off: the node stops, three records
			// are never told.
			if err := st.ReleaseLease(ctx, "node-1"); err != nil {
				t.Fatal(err)
			}
			login()
			login()
			login()
			c, err := retire()
			if err != nil || !c.Set || c.Seq != cursor.Seq || c.Head != cursor.Seq+3 || c.Lag() != 3 {
				t.Fatalf("retire: %+v, %v (cursor was %d)", c, err, cursor.Seq)
			}
			if s, set, err := db.AuditNotifyCursor(ctx); err != nil || set {
				t.Fatalf("audit archive still sees the cursor at %d (%v)", s, err)
			}
			recs, err := st.AuditAfter(ctx, c.Head, 10)
			if err != nil || len(recs) != 1 || recs[0].Action != notify.ActionRetire || recs[0].Actor != "operator-1" {
				t.Fatalf("records after the retire: %+v, %v", recs, err)
			}
			var details struct{ Cursor, Head, Undelivered int64 }
			if err := json.Unmarshal(recs[0].Details, &details); err != nil || details.Cursor != c.Seq || details.Undelivered != 3 || details.Head != c.Head {
				t.Fatalf("the retire record's details: %s, %v", recs[0].Details, err)
			}
			if again, err := retire(); err != nil || again.Set {
				t.Fatalf("retire again: %+v, %v", again, err)
			}

			// Turned on again later: the notifier starts at the head,
			// what happened while it was off is not told.
			login()
			before := g.count()
			drainNotifier(t, newNotifier(t, db, g, notify.Options{Holder: "node-2"}))
			now, err := st.NotifyCursor(ctx)
			if err != nil || !now.Set || now.Seq != now.Head || now.Head != c.Head+2 {
				t.Fatalf("cursor after notifications were turned on again: %+v, %v (retired at head %d)", now, err, c.Head)
			}
			if got := g.count(); got != before {
				t.Fatalf("%d notifications of what happened while they were off", got-before)
			}
			login()
			drainNotifier(t, newNotifier(t, db, g, notify.Options{Holder: "node-2"}))
			if got := g.count(); got != before+1 {
				t.Fatalf("%d notifications after the restart, want 1", got-before)
			}
		})
	}
}

// TestNotifyRetireCursorQuiet: a lease that lapsed less than
// notify.RetireQuiet ago still refuses the retire, as a live one does (a
// node with notifications on may be waiting between rounds, its gateway
// out, and would put the cursor back at the head, the records written
// meanwhile never told nor counted); a lease given up does not.
func TestNotifyRetireCursorQuiet(t *testing.T) {
	for _, d := range storetest.Dialects() {
		t.Run(d.Name, func(t *testing.T) {
			ctx := ctxT(t)
			db := storetest.Open(t, d.NewConfig(t))
			st := db.Notify()
			log := audit.New(db, slog.New(slog.DiscardHandler), nil, audit.Options{})
			defer log.Close()
			if _, err := log.Append(ctx, audit.Entry{Actor: "citizen:12345678", Action: "oidc.login", Object: "tax", Outcome: "success"}); err != nil {
				t.Fatal(err)
			}
			retire := func() (notify.Cursor, error) {
				return notify.Retire(ctx, st, log, "operator-1", false)
			}
			refused := func(live bool) {
				t.Helper()
				c, err := retire()
				var le *notify.LeaseError
				if !errors.Is(err, notify.ErrLeaseLive) || !errors.As(err, &le) || le.Holder != "node-1" || le.Live != live || le.Until.IsZero() || c.Set {
					t.Fatalf("retire (lease live %v): %+v, %v", live, c, err)
				}
				if c, err := st.NotifyCursor(ctx); err != nil || !c.Set {
					t.Fatalf("the cursor is gone after a refused retire: %+v, %v", c, err)
				}
			}
			if ok, _, err := st.ClaimLease(ctx, "node-1", time.Hour); err != nil || !ok {
				t.Fatalf("claim: %v, %v", ok, err)
			}
			refused(true)
			// The lease lapsed a moment ago: its node may only be
			// waiting to retry.
			if err := st.ReleaseLease(ctx, "node-1"); err != nil {
				t.Fatal(err)
			}
			if ok, _, err := st.ClaimLease(ctx, "node-1", time.Millisecond); err != nil || !ok {
				t.Fatalf("claim: %v, %v", ok, err)
			}
			time.Sleep(20 * time.Millisecond)
			if c, err := st.NotifyCursor(ctx); err != nil || c.LeaseLive {
				t.Fatalf("the lease has not lapsed: %+v, %v", c, err)
			}
			refused(false)
			// Given up by its node, stopping: retired.
			if err := st.ReleaseLease(ctx, "node-1"); err != nil {
				t.Fatal(err)
			}
			if c, err := retire(); err != nil || !c.Set {
				t.Fatalf("retire after the lease was given up: %+v, %v", c, err)
			}
		})
	}
}

// TestNotifyRetireCursorTwice: two retires at once (two operators, two
// nodes) retire the cursor once: one deletes it with the one
// notify.cursor.retire record, the other finds nothing to do (on
// PostgreSQL its DELETE waits for the first's row lock, then finds the
// row gone); neither fails.
func TestNotifyRetireCursorTwice(t *testing.T) {
	for _, d := range storetest.Dialects() {
		t.Run(d.Name, func(t *testing.T) {
			ctx := ctxT(t)
			db := storetest.Open(t, d.NewConfig(t))
			st := db.Notify()
			log := audit.New(db, slog.New(slog.DiscardHandler), nil, audit.Options{})
			defer log.Close()
			if ok, _, err := st.ClaimLease(ctx, "node-1", time.Hour); err != nil || !ok {
				t.Fatalf("claim: %v, %v", ok, err)
			}
			if err := st.ReleaseLease(ctx, "node-1"); err != nil {
				t.Fatal(err)
			}
			head, err := st.AuditHeadSeq(ctx)
			if err != nil {
				t.Fatal(err)
			}
			type result struct {
				c   notify.Cursor
				err error
			}
			out := make(chan result, 2)
			for range 2 {
				go func() {
					c, err := notify.Retire(ctx, st, log, "operator-1", false)
					out <- result{c, err}
				}()
			}
			a, b := <-out, <-out
			if a.err != nil || b.err != nil || a.c.Set == b.c.Set {
				t.Fatalf("two retires at once: %+v, %+v", a, b)
			}
			recs, err := st.AuditAfter(ctx, head, 10)
			if err != nil || len(recs) != 1 || recs[0].Action != notify.ActionRetire {
				t.Fatalf("records after two retires: %+v, %v", recs, err)
			}
		})
	}
}
