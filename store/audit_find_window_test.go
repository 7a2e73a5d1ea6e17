package store_test

import (
	"context"
	"fmt"
	"math"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/thiqa/thiqa/internal/audit"
	"github.com/thiqa/thiqa/store"
	"github.com/thiqa/thiqa/store/storetest"
)

// skewLog appends n records made by three nodes whose clocks differ: seq
// s is made about s seconds after findBase by node s%3, whose clock is 0,
// 40 s behind or 25 s ahead; so times go backwards across seqs, and the
// first and last records of a window by time are not its lowest and
// highest seqs. One record in seven is a failure. It returns the times
// by seq (index seq-1).
func skewLog(t testing.TB, db *store.DB, n int) []time.Time {
	t.Helper()
	skew := []time.Duration{0, -40 * time.Second, 25 * time.Second}
	at := make([]time.Time, n)
	for i := range at {
		seq := i + 1
		at[i] = findBase.Add(time.Duration(seq)*time.Second + skew[seq%3])
	}
	err := db.AppendAuditRecords(context.Background(), func(h audit.Head) ([]audit.Record, error) {
		recs := make([]audit.Record, n)
		prev := h.Hash
		for i := range recs {
			seq := h.Seq + int64(i) + 1
			r := audit.Record{Seq: seq, Time: at[i], Actor: fmt.Sprintf("node:%d", seq%3), Action: "identity.login",
				Object: "client", Outcome: audit.OutcomeSuccess, Details: []byte(`{}`), PrevHash: prev}
			if seq%7 == 0 {
				r.Outcome = audit.OutcomeFailure
			}
			r.Hash = audit.HashRecord(r)
			prev = r.Hash
			recs[i] = r
		}
		return recs, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return at
}

// wantFound is the answer to q (time, outcome, first seq, order, limit)
// over all, the log in seq order: what the plain walk of the primary key
// returns.
func wantFound(all []audit.Record, q audit.Query) []int64 {
	out := []int64{}
	for i := range all {
		r := all[i]
		if !q.OldestFirst {
			r = all[len(all)-1-i]
		}
		if len(out) == q.Limit {
			break
		}
		if (q.Since.IsZero() || !r.Time.Before(q.Since)) && (q.Until.IsZero() || r.Time.Before(q.Until)) &&
			(q.Outcome == "" || r.Outcome == q.Outcome) && r.Seq >= q.FromSeq {
			out = append(out, r.Seq)
		}
	}
	return out
}

// TestFindByWindowSkewedClocks checks searches by time alone against the
// plain walk of the log, on a log whose times are out of seq order (three
// nodes' clocks): windows whose edges fall on records' times (since
// inclusive, until exclusive), a nanosecond either side, between records,
// before and after the log, one-sided and empty; both orders, several
// limits, with an outcome and a first seq. The window's statement is
// checked on its own too (the log is small enough for the first read of
// FindAuditRecords to answer most of them), so that a seq range taken
// from the records first and last by time, not the lowest and highest
// seqs, fails.
func TestFindByWindowSkewedClocks(t *testing.T) {
	const n = 300
	for _, d := range storetest.Dialects() {
		t.Run(d.Name, func(t *testing.T) {
			ctx := ctxT(t)
			db := storetest.Open(t, d.NewConfig(t))
			at := skewLog(t, db, n)
			all, err := db.FindAuditRecords(ctx, audit.Query{Limit: audit.MaxFindLimit, OldestFirst: true})
			if err != nil || len(all) != n {
				t.Fatalf("reading the log: %d records, %v", len(all), err)
			}
			var edges []time.Time
			for _, seq := range []int{1, 3, 60, 61, 151, 299, 300} {
				edges = append(edges, at[seq-1], at[seq-1].Add(time.Nanosecond), at[seq-1].Add(-time.Nanosecond))
			}
			edges = append(edges, findBase.Add(-time.Hour), findBase.Add(time.Hour), findBase.Add(100*time.Second+time.Millisecond))
			slices.SortFunc(edges, func(a, b time.Time) int { return a.Compare(b) })
			edges = slices.CompactFunc(edges, time.Time.Equal)
			var windows [][2]time.Time
			for i, s := range edges {
				windows = append(windows, [2]time.Time{s, {}}, [2]time.Time{{}, s})
				for _, u := range edges[i+1:] {
					windows = append(windows, [2]time.Time{s, u})
				}
			}
			var checked, empty, fullWindow int
			for _, w := range windows {
				for _, o := range []struct {
					outcome string
					from    int64
				}{{"", 0}, {audit.OutcomeFailure, 0}, {"", 100}} {
					for _, oldest := range []bool{false, true} {
						for _, limit := range []int{2, 1000} {
							q := audit.Query{Since: w[0], Until: w[1], Outcome: o.outcome, FromSeq: o.from, OldestFirst: oldest, Limit: limit}
							want := wantFound(all, q)
							got, err := db.FindAuditRecords(ctx, q)
							if err != nil {
								t.Fatal(err)
							}
							if s := seqs(got); !slices.Equal(s, want) {
								t.Fatalf("%s: FindAuditRecords got %v, want %v", describe(q), s, want)
							}
							s, args := store.FindWindowQuery(d.Name, q)
							got, err = db.FindRecords(ctx, s, args)
							if err != nil {
								t.Fatal(err)
							}
							if s := seqs(got); !slices.Equal(s, want) {
								t.Fatalf("%s: the window's statement got %v, want %v", describe(q), s, want)
							}
							checked++
							if len(want) == 0 {
								empty++
							} else if len(want) < limit {
								fullWindow++
							}
						}
					}
				}
			}
			if empty == 0 || fullWindow == 0 {
				t.Fatalf("%d searches, %d empty, %d whole windows: the cases miss some", checked, empty, fullWindow)
			}
		})
	}
}

// describe prints a query's time bounds readably.
func describe(q audit.Query) string {
	f := func(t time.Time) string {
		if t.IsZero() {
			return "-"
		}
		return t.Sub(findBase).String()
	}
	return fmt.Sprintf("since %s until %s outcome %q from %d oldest %v limit %d", f(q.Since), f(q.Until), q.Outcome, q.FromSeq, q.OldestFirst, q.Limit)
}

// TestFindByWindowUsesIndex checks the plan of a search by time alone:
// the window's lowest and highest seqs are read from the index on
// (at_unix_ns, seq) (migration 0031), and the primary key is walked
// between them; neither database reads the whole table or sorts. On this
// log, larger than the first read of the newest (oldest) records, windows
// that read reaches in part get the plain walk's answer, and (SQLite) a
// negative limit the whole window.
func TestFindByWindowUsesIndex(t *testing.T) {
	for _, d := range storetest.Dialects() {
		t.Run(d.Name, func(t *testing.T) {
			ctx := ctxT(t)
			db := storetest.Open(t, d.NewConfig(t))
			skewLog(t, db, 5000)
			if d.Name == store.DriverPostgres {
				if err := db.ExecTx(ctx, "ANALYZE audit_log"); err != nil {
					t.Fatal(err)
				}
			}
			// SQLite takes a negative limit for none: every record of the
			// window, as the plain walk returns, not only those among the
			// newest records read first (PostgreSQL refuses it; audit.Find
			// refuses it before the store).
			if d.Name == store.DriverSQLite {
				q := audit.Query{Until: findBase.Add(100 * time.Second), Limit: -1}
				got, err := db.FindAuditRecords(ctx, q)
				ps, pargs := store.FindQuery(d.Name, q)
				want, werr := db.FindRecords(ctx, ps, pargs)
				if err != nil || werr != nil || len(want) < 50 || !slices.Equal(seqs(got), seqs(want)) {
					t.Fatalf("limit -1: %d records (%v), want %d (%v)", len(got), err, len(want), werr)
				}
			}
			// Windows that the first read (the newest or oldest 1,204
			// records, for a limit of 51) reaches only in part: the
			// answer is still the plain walk's, not the few it found.
			sec := func(s int) time.Time { return findBase.Add(time.Duration(s) * time.Second) }
			for _, edge := range []int{3790, 3800, 3810, 3830, 3850} {
				for _, q := range []audit.Query{
					{Since: sec(3000), Until: sec(edge), Limit: 51},
					{Since: sec(3000), Until: sec(edge), Limit: 51, Outcome: audit.OutcomeFailure},
					{Since: sec(edge - 2600), Until: sec(2000), Limit: 51, OldestFirst: true},
				} {
					got, err := db.FindAuditRecords(ctx, q)
					ps, pargs := store.FindQuery(d.Name, q)
					want, werr := db.FindRecords(ctx, ps, pargs)
					if err != nil || werr != nil || !slices.Equal(seqs(got), seqs(want)) {
						t.Fatalf("%s: got %v (%v), want %v (%v)", describe(q), seqs(got), err, seqs(want), werr)
					}
				}
			}
			since, until := findBase.Add(1000*time.Second), findBase.Add(1100*time.Second)
			for _, q := range []audit.Query{
				{Since: since, Until: until, Limit: 51},
				{Since: since, Until: until, Limit: 51, OldestFirst: true},
				{Since: since, Until: until, Outcome: audit.OutcomeFailure, Limit: 51},
				// One-sided windows of a fiftieth of the log (a wide one
				// is as well read whole: PostgreSQL may then read the
				// table for the bound, as long as the window anyway).
				{Since: findBase.Add(4900 * time.Second), Limit: 51, OldestFirst: true},
				{Until: findBase.Add(100 * time.Second), Limit: 51},
				{Since: since, Until: until, FromSeq: 1050, Limit: 51},
			} {
				s, args := store.FindWindowQuery(d.Name, q)
				var lines []string
				var err error
				if d.Name == store.DriverPostgres {
					lines, err = db.QueryLines(ctx, "EXPLAIN (COSTS OFF) "+s, args...)
				} else {
					lines, err = db.QueryLines(ctx, "EXPLAIN QUERY PLAN "+s, args...)
				}
				if err != nil {
					t.Fatal(err)
				}
				plan := strings.Join(lines, "\n")
				bounds := 0
				if !q.Since.IsZero() {
					bounds++
				}
				if !q.Until.IsZero() {
					bounds++
				}
				if got := strings.Count(plan, "audit_log_at"); got != bounds {
					t.Errorf("%s: %d reads of audit_log_at, want %d:\n%s", describe(q), got, bounds, plan)
				}
				if d.Name == store.DriverPostgres {
					if strings.Contains(plan, "Seq Scan") || strings.Contains(plan, "Sort") || !strings.HasPrefix(strings.TrimSpace(lines[0]), "Limit") ||
						!strings.Contains(plan, "Index Scan") || !strings.Contains(plan, "audit_log_pkey") {
						t.Errorf("%s: the plan does not walk the primary key between the bounds:\n%s", describe(q), plan)
					}
					continue
				}
				if strings.Contains(plan, "SCAN audit_log") || strings.Contains(plan, "TEMP B-TREE") ||
					!strings.Contains(plan, "SEARCH audit_log USING INTEGER PRIMARY KEY (rowid") {
					t.Errorf("%s: the plan does not walk the primary key between the bounds:\n%s", describe(q), plan)
				}
			}
			// The statements of findByWindow's rounds: the entries of a
			// window wider than the round reads (most of the log), read in
			// time order up to a count; and the walk of the primary key
			// between two seqs. (A window the planner expects small may
			// be read whole and sorted: as cheap.)
			for _, q := range []audit.Query{
				{Since: sec(100), Until: sec(4900), Limit: 51},
				{Since: sec(100), Until: sec(4900), Outcome: audit.OutcomeFailure, FromSeq: 1050, Limit: 51, OldestFirst: true},
				{Until: sec(4900), Limit: 51},
				{Since: sec(100), Limit: 51, OldestFirst: true},
			} {
				s, args := store.FindSpanQuery(q, 1000)
				span := explain(t, db, d.Name, s, args)
				s, args = store.FindRangeQuery(d.Name, q, 1000, 1100)
				walk := explain(t, db, d.Name, s, args)
				if d.Name == store.DriverPostgres {
					if !strings.Contains(span, "Index Only Scan using audit_log_at") || strings.Contains(span, "Seq Scan") || strings.Contains(span, "Sort") {
						t.Errorf("%s: the window's entries are not read from audit_log_at in time order:\n%s", describe(q), span)
					}
					if !strings.Contains(walk, "Index Scan") || !strings.Contains(walk, "audit_log_pkey") || !strings.Contains(walk, "Index Cond: ((seq >= ") ||
						strings.Contains(walk, "Seq Scan") || strings.Contains(walk, "Sort") || strings.Contains(walk, "audit_log_at") {
						t.Errorf("%s: the range does not walk the primary key between its seqs:\n%s", describe(q), walk)
					}
					continue
				}
				if !strings.Contains(span, "SEARCH audit_log USING COVERING INDEX audit_log_at (at_unix_ns") || strings.Contains(span, "TEMP B-TREE") {
					t.Errorf("%s: the window's entries are not read from audit_log_at in time order:\n%s", describe(q), span)
				}
				if !strings.Contains(walk, "SEARCH audit_log USING INTEGER PRIMARY KEY (rowid>? AND rowid<?)") || strings.Contains(walk, "TEMP B-TREE") {
					t.Errorf("%s: the range does not walk the primary key between its seqs:\n%s", describe(q), walk)
				}
			}
		})
	}
}

// explain returns the plan of s in the dialect, one line per node.
func explain(t *testing.T, db *store.DB, dialect, s string, args []any) string {
	t.Helper()
	prefix := "EXPLAIN QUERY PLAN "
	if dialect == store.DriverPostgres {
		prefix = "EXPLAIN (COSTS OFF) "
	}
	lines, err := db.QueryLines(ctxT(t), prefix+s, args...)
	if err != nil {
		t.Fatal(err)
	}
	return strings.Join(lines, "\n")
}

// TestFindByWindowReadsTheShorter: a wide window whose end (in the
// search's order) lies near the start of the walk, on PostgreSQL, whose
// statistics count the index entries read. The search reads a few
// thousand of the window's index entries, then the records at the start
// of the walk, not every entry of the window (most of the log), nor the
// whole table (PostgreSQL's plan for the bound of such a window): that is
// what the plain walk costs, a few thousand records before the first
// match, and what a national log's `thiqa audit find --until <an hour
// ago>` must not exceed by the whole log.
func TestFindByWindowReadsTheShorter(t *testing.T) {
	const n = 50000
	ctx := ctxT(t)
	d := postgresDialect(t)
	db := storetest.Open(t, d.NewConfig(t))
	skewLog(t, db, n)
	if err := db.ExecTx(ctx, "ANALYZE audit_log"); err != nil {
		t.Fatal(err)
	}
	sec := func(s int) time.Time { return findBase.Add(time.Duration(s) * time.Second) }
	for _, q := range []audit.Query{
		{Until: sec(n - 2000), Limit: 51},
		{Since: sec(2000), Limit: 51, OldestFirst: true},
		{Since: sec(2000), Until: sec(n - 2000), Limit: 51},
		{Since: sec(2000), Until: sec(n - 2000), Limit: 51, OldestFirst: true, Outcome: audit.OutcomeFailure},
	} {
		ps, pargs := store.FindQuery(d.Name, q)
		want, err := db.FindRecords(ctx, ps, pargs)
		if err != nil || len(want) != 51 {
			t.Fatalf("%s: the plain walk: %d records, %v", describe(q), len(want), err)
		}
		// A backend reports its counts once idle, within a second: the
		// plain walk's before the reset, the search's after it.
		time.Sleep(1500 * time.Millisecond)
		if err := db.ExecTx(ctx, "SELECT pg_stat_reset()"); err != nil {
			t.Fatal(err)
		}
		got, err := db.FindAuditRecords(ctx, q)
		if err != nil || !slices.Equal(seqs(got), seqs(want)) {
			t.Fatalf("%s: got %v (%v), want %v", describe(q), seqs(got), err, seqs(want))
		}
		var scans, read int64
		for deadline := time.Now().Add(15 * time.Second); time.Now().Before(deadline); time.Sleep(200 * time.Millisecond) {
			scans, err = db.QueryInt64(ctx, "SELECT coalesce(sum(idx_scan), 0) FROM pg_stat_user_indexes WHERE indexrelname = 'audit_log_at'")
			if err != nil {
				t.Fatal(err)
			}
			if scans > 0 {
				break
			}
		}
		if read, err = db.QueryInt64(ctx, "SELECT coalesce(sum(idx_tup_read), 0) FROM pg_stat_user_indexes WHERE indexrelname = 'audit_log_at'"); err != nil {
			t.Fatal(err)
		}
		heap, err := db.QueryInt64(ctx, "SELECT coalesce(sum(seq_tup_read), 0) FROM pg_stat_user_tables WHERE relname = 'audit_log'")
		if err != nil {
			t.Fatal(err)
		}
		if heap > 0 {
			t.Errorf("%s: the table read whole: %d records", describe(q), heap)
		}
		if scans == 0 || read > n/2 {
			t.Errorf("%s: %d entries of audit_log_at read in %d scans, want some and at most %d (the window has about %d)", describe(q), read, scans, n/2, n-4000)
		}
	}
}

// TestFindByWindowRounds checks searches by time whose answer takes more
// than one round of findByWindow (a log wider than a round's read of the
// window's index entries) against the walk of the whole primary key, on
// both databases: wide windows near either end, far from both, with an
// outcome, a first seq, both orders and several limits.
func TestFindByWindowRounds(t *testing.T) {
	const n = 25000
	for _, d := range storetest.Dialects() {
		t.Run(d.Name, func(t *testing.T) {
			ctx := ctxT(t)
			db := storetest.Open(t, d.NewConfig(t))
			skewLog(t, db, n)
			sec := func(s int) time.Time { return findBase.Add(time.Duration(s) * time.Second) }
			windows := [][2]time.Time{
				{{}, sec(n - 2000)}, {sec(2000), {}}, {sec(2000), sec(n - 2000)},
				{{}, sec(n - 6000)}, {sec(6000), {}}, {sec(500), sec(n - 30)}, {sec(30), sec(n - 500)},
				{sec(12000), sec(12600)}, {{}, sec(-100)}, {sec(n + 100), {}},
			}
			for _, w := range windows {
				for _, o := range []struct {
					outcome string
					from    int64
				}{{"", 0}, {audit.OutcomeFailure, 0}, {"", 9000}} {
					for _, oldest := range []bool{false, true} {
						for _, limit := range []int{1, 51, 1000} {
							q := audit.Query{Since: w[0], Until: w[1], Outcome: o.outcome, FromSeq: o.from, OldestFirst: oldest, Limit: limit}
							ps, pargs := store.FindRangeQuery(d.Name, q, 0, math.MaxInt64)
							want, err := db.FindRecords(ctx, ps, pargs)
							if err != nil {
								t.Fatal(err)
							}
							got, err := db.FindAuditRecords(ctx, q)
							if err != nil || !slices.Equal(seqs(got), seqs(want)) {
								t.Fatalf("%s: got %d records %v (%v), want %d", describe(q), len(got), err, seqs(got)[:min(len(got), 5)], len(want))
							}
						}
					}
				}
			}
		})
	}
}
