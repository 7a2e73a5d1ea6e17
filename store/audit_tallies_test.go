package store_test

import (
	"bytes"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/thiqa/thiqa/internal/audit"
	"github.com/thiqa/thiqa/store/storetest"
)

// TestAuditTallies counts a log spanning two months on both databases:
// by month, day and in total, with a collective record counted as its
// items, a details object that only looks like one counted once, and the
// range's ends exact to the nanosecond.
func TestAuditTallies(t *testing.T) {
	for _, d := range storetest.Dialects() {
		t.Run(d.Name, func(t *testing.T) {
			ctx := ctxT(t)
			db := storetest.Open(t, d.NewConfig(t))
			var mu sync.Mutex
			now := time.Date(2026, 10, 31, 23, 59, 59, 999_999_999, time.UTC)
			clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
			set := func(t time.Time) { mu.Lock(); now = t; mu.Unlock() }
			log := audit.New(db, slog.New(slog.DiscardHandler), nil, audit.Options{Now: clock})
			defer log.Close()
			add := func(action, outcome string, details any) {
				t.Helper()
				if _, err := log.Append(ctx, audit.Entry{Actor: "t", Action: action, Outcome: outcome, Details: details}); err != nil {
					t.Fatal(err)
				}
			}
			add("certificate.issue", audit.OutcomeSuccess, nil) // October: outside every range below
			set(time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC))
			add("certificate.issue", audit.OutcomeSuccess, nil)
			add("certificate.issue", audit.OutcomeRefused, map[string]any{"reason": "bad CSR"})
			// Details like the credential list's: a count but no items.
			add("credential.list", audit.OutcomeSuccess, map[string]any{"count": 7})
			set(time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC))
			g, err := log.Group("tsa", "timestamp.issue", "unit-1", audit.OutcomeSuccess)
			if err != nil {
				t.Fatal(err)
			}
			var wg sync.WaitGroup
			for i := range 5 {
				wg.Go(func() {
					if _, err := g.Append(ctx, fmt.Appendf(nil, `{"serial":"%d"}`, i)); err != nil {
						t.Error(err)
					}
				})
			}
			wg.Wait()
			set(time.Date(2026, 12, 2, 8, 0, 0, 0, time.UTC))
			add("document.seal", audit.OutcomeFailure, nil)
			add("document.seal", audit.OutcomeSuccess, nil)

			from := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
			to := time.Date(2026, 12, 31, 0, 0, 0, 0, time.UTC)
			var tsRecords int64
			tallies, err := db.AuditTallies(ctx, from, to, true)
			if err != nil {
				t.Fatal(err)
			}
			got := map[string]audit.Tally{}
			for _, x := range tallies {
				got[x.Day.Format(time.DateOnly)+" "+x.Action+" "+x.Outcome] = x
				if x.Action == "timestamp.issue" {
					tsRecords = x.Records
				}
			}
			if tsRecords < 1 || tsRecords > 5 {
				t.Fatalf("time-stamp records = %d, want 1 to 5 collective records", tsRecords)
			}
			want := map[string][2]int64{ // records, events
				"2026-11-01 certificate.issue success": {1, 1},
				"2026-11-01 certificate.issue refused": {1, 1},
				"2026-11-01 credential.list success":   {1, 1},
				"2026-11-30 timestamp.issue success":   {tsRecords, 5},
				"2026-12-02 document.seal failure":     {1, 1},
				"2026-12-02 document.seal success":     {1, 1},
			}
			if len(got) != len(want) {
				t.Errorf("tallies = %+v, want %d rows", tallies, len(want))
			}
			for k, w := range want {
				if g := got[k]; g.Records != w[0] || g.Events != w[1] {
					t.Errorf("%s: records %d events %d, want %d and %d", k, g.Records, g.Events, w[0], w[1])
				}
			}

			// The whole range, and its ends: [from, to) to the nanosecond.
			tallies, err = db.AuditTallies(ctx, from.Add(-1), time.Date(2026, 12, 2, 8, 0, 0, 0, time.UTC), false)
			if err != nil {
				t.Fatal(err)
			}
			var total int64
			for _, x := range tallies {
				if !x.Day.IsZero() {
					t.Errorf("day %s in a tally of the whole range", x.Day)
				}
				total += x.Events
			}
			if total != 9 { // October's last nanosecond, November's 8 events; none at the end
				t.Errorf("total events = %d, want 9", total)
			}

			// By month and by day, as CountActivity groups the days.
			for by, wantEvents := range map[audit.Period]string{audit.PeriodMonth: "map[2026-11:8 2026-12:2]", audit.PeriodDay: "map[2026-11-01:3 2026-11-30:5 2026-12-02:2]"} {
				a, err := audit.CountActivity(ctx, db, from, to, by)
				if err != nil {
					t.Fatal(err)
				}
				per := map[string]int64{}
				for _, r := range a.Rows {
					per[r.Period] += r.Events
				}
				if fmt.Sprint(per) != wantEvents {
					t.Errorf("by %s: %v, want %s", by, per, wantEvents)
				}
			}
			if _, err := audit.CountActivity(ctx, db, from, to, audit.Period("week")); !errors.Is(err, audit.ErrBadPeriod) {
				t.Errorf("period week: %v, want ErrBadPeriod", err)
			}

			// The statistics as an operator reads them.
			a, err := audit.CountActivity(ctx, db, from, to, audit.PeriodMonth)
			if err != nil {
				t.Fatal(err)
			}
			var text, js bytes.Buffer
			if err := a.WriteText(&text); err != nil {
				t.Fatal(err)
			}
			if err := a.WriteJSON(&js); err != nil {
				t.Fatal(err)
			}
			for _, line := range []string{"2026-11  timestamp.issue    5        0        0        5", "2026-11  certificate.issue  1        1        0        2"} {
				if !strings.Contains(text.String(), line) {
					t.Errorf("text report lacks %q:\n%s", line, text.String())
				}
			}
			if !strings.Contains(js.String(), `"action": "timestamp.issue",`) || !strings.Contains(js.String(), `"events": 5,`) {
				t.Errorf("JSON report:\n%s", js.String())
			}
			if _, err := audit.CountActivity(ctx, db, to, from, audit.PeriodMonth); !errors.Is(err, audit.ErrBadRange) {
				t.Errorf("reversed range: %v, want ErrBadRange", err)
			}
		})
	}
}
