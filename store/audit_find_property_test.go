package store_test

import (
	"context"
	"math"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/thiqa/thiqa/internal/audit"
	"github.com/thiqa/thiqa/store"
	"github.com/thiqa/thiqa/store/storetest"
)

// randomSkewLog appends n records whose times follow seq only roughly:
// five nodes, each with its own clock offset (up to minutes either way),
// jitter, a node whose clock jumps hours back or ahead now and then, and
// runs of records sharing one time. Failures are rare, "denied" sits in a
// few seqs only (far from both ends). It returns the log in seq order.
func randomSkewLog(t testing.TB, db *store.DB, rng *rand.Rand, n int) []audit.Record {
	t.Helper()
	offsets := make([]time.Duration, 5)
	for i := range offsets {
		offsets[i] = time.Duration(rng.Int64N(int64(6*time.Minute))) - 3*time.Minute
	}
	at := make([]time.Time, n)
	for i := range at {
		seq := i + 1
		node := rng.IntN(len(offsets))
		d := time.Duration(seq)*time.Second + offsets[node] + time.Duration(rng.Int64N(int64(time.Second)))
		switch r := rng.IntN(1000); {
		case r < 3:
			d += time.Duration(rng.IntN(10)+1) * time.Hour
		case r < 6:
			d -= time.Duration(rng.IntN(10)+1) * time.Hour
		case r < 60 && i > 0:
			d = at[i-1].Sub(findBase)
		}
		at[i] = findBase.Add(d)
	}
	deniedLo := n/3 + rng.IntN(n/3)
	var all []audit.Record
	err := db.AppendAuditRecords(context.Background(), func(h audit.Head) ([]audit.Record, error) {
		recs := make([]audit.Record, n)
		prev := h.Hash
		for i := range recs {
			seq := h.Seq + int64(i) + 1
			r := audit.Record{Seq: seq, Time: at[i], Actor: "node", Action: "identity.login",
				Object: "client", Outcome: audit.OutcomeSuccess, Details: []byte(`{}`), PrevHash: prev}
			switch {
			case i >= deniedLo && i < deniedLo+5:
				r.Outcome = "denied"
			case rng.IntN(20) == 0:
				r.Outcome = audit.OutcomeFailure
			}
			r.Hash = audit.HashRecord(r)
			prev = r.Hash
			recs[i] = r
		}
		all = recs
		return recs, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return all
}

// TestFindByWindowRandom checks FindAuditRecords' searches by time alone
// against a plain filter in Go of every record (in the search's order, cut
// at its limit) on random logs whose times are out of seq order: random
// windows (edges on records' times, a nanosecond off, between records,
// outside the log, one-sided, empty), both orders, limits from 1 to
// beyond the window, an outcome (frequent, rare, absent) and a first seq.
// The log is wider than findByWindow's first round reads of the window's
// index, so windows whose matches lie far from the start of the walk are
// answered in later rounds. The seed is logged.
func TestFindByWindowRandom(t *testing.T) {
	const n, queries = 40000, 300
	for _, d := range storetest.Dialects() {
		t.Run(d.Name, func(t *testing.T) {
			seed := uint64(time.Now().UnixNano())
			t.Logf("seed %d", seed)
			rng := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
			ctx := ctxT(t)
			db := storetest.Open(t, d.NewConfig(t))
			all := randomSkewLog(t, db, rng, n)
			if d.Name == store.DriverPostgres {
				if err := db.ExecTx(ctx, "ANALYZE audit_log"); err != nil {
					t.Fatal(err)
				}
			}
			edge := func() time.Time {
				switch rng.IntN(6) {
				case 0:
					return time.Time{}
				case 1:
					return all[rng.IntN(n)].Time
				case 2:
					return all[rng.IntN(n)].Time.Add(time.Duration(rng.IntN(3)-1) * time.Nanosecond)
				case 3:
					return findBase.Add(time.Duration(rng.Int64N(int64(n+7200)*int64(time.Second))) - time.Hour)
				case 4:
					return findBase.Add(time.Duration(rng.IntN(40)-20) * time.Hour)
				default:
					// Near an end of the log: the windows reaching most of it.
					s := rng.IntN(3000)
					if rng.IntN(2) == 0 {
						s = n - s
					}
					return findBase.Add(time.Duration(s) * time.Second)
				}
			}
			var empty, cut, whole, farRare int
			for i := range queries {
				q := audit.Query{Since: edge(), Until: edge(), OldestFirst: rng.IntN(2) == 0}
				if q.Since.IsZero() && q.Until.IsZero() {
					q.Until = edge()
					if q.Until.IsZero() {
						q.Since = all[rng.IntN(n)].Time
					}
				}
				if !q.Since.IsZero() && !q.Until.IsZero() && !q.Since.Before(q.Until) {
					q.Since, q.Until = q.Until, q.Since
					if q.Since.Equal(q.Until) {
						q.Until = q.Until.Add(time.Nanosecond)
					}
				}
				switch rng.IntN(6) {
				case 0:
					q.Outcome = audit.OutcomeFailure
				case 1:
					q.Outcome = "denied"
				case 2:
					q.Outcome = "absent"
				}
				if rng.IntN(4) == 0 {
					q.FromSeq = rng.Int64N(int64(n) + 100)
				}
				switch rng.IntN(5) {
				case 0:
					q.Limit = 1
				case 1:
					q.Limit = rng.IntN(60) + 1
				case 2:
					q.Limit = rng.IntN(audit.MaxFindLimit) + 1
				case 3:
					q.Limit = audit.MaxFindLimit + 1
				default:
					q.Limit = 51
				}
				want := wantFound(all, q)
				got, err := db.FindAuditRecords(ctx, q)
				if err != nil {
					t.Fatalf("query %d, %s: %v", i, describe(q), err)
				}
				if s := seqs(got); !slices.Equal(s, want) {
					t.Fatalf("query %d, %s: got %d records %v, want %d %v", i, describe(q), len(s), s[:min(len(s), 8)], len(want), want[:min(len(want), 8)])
				}
				for j, r := range got {
					if w := all[r.Seq-all[0].Seq]; !r.Time.Equal(w.Time) || r.Outcome != w.Outcome || string(r.Hash) != string(w.Hash) {
						t.Fatalf("query %d, record %d: got %+v, want %+v", i, j, r, w)
					}
				}
				switch {
				case len(want) == 0:
					empty++
				case len(want) == q.Limit:
					cut++
				default:
					whole++
				}
				if q.Outcome == "denied" && len(want) > 0 {
					farRare++
				}
			}
			t.Logf("%d searches: %d empty, %d cut at the limit, %d whole windows, %d finding the rare outcome far from both ends", queries, empty, cut, whole, farRare)
			if empty == 0 || cut == 0 || whole == 0 || farRare == 0 {
				t.Fatal("the random searches miss a kind: run again (the seed is logged)")
			}
		})
	}
}

// TestFindByWindowRandomFixed repeats fixed searches of
// TestFindByWindowRandom's kinds that each take several rounds, so that
// a fault there does not depend on the seed: the rare outcome newest
// first and oldest first over nearly the whole log, and a window in the
// middle of the log with a limit larger than it.
func TestFindByWindowRandomFixed(t *testing.T) {
	const n = 40000
	for _, d := range storetest.Dialects() {
		t.Run(d.Name, func(t *testing.T) {
			rng := rand.New(rand.NewPCG(1, 2))
			ctx := ctxT(t)
			db := storetest.Open(t, d.NewConfig(t))
			all := randomSkewLog(t, db, rng, n)
			sec := func(s int) time.Time { return findBase.Add(time.Duration(s) * time.Second) }
			for _, q := range []audit.Query{
				{Since: sec(100), Until: sec(n - 100), Outcome: "denied", Limit: 3},
				{Since: sec(100), Until: sec(n - 100), Outcome: "denied", Limit: 3, OldestFirst: true},
				{Until: sec(n - 100), Outcome: "denied", Limit: 51},
				{Since: sec(100), Outcome: "denied", Limit: 51, OldestFirst: true},
				{Since: sec(n / 2), Until: sec(n/2 + 600), Limit: audit.MaxFindLimit + 1},
				{Since: sec(n / 2), Until: sec(n/2 + 600), Limit: audit.MaxFindLimit + 1, OldestFirst: true, FromSeq: int64(n/2 + 300)},
				{Since: sec(n + 5*3600), Limit: 51},
				{Until: sec(-5 * 3600), Limit: 51, OldestFirst: true},
			} {
				want := wantFound(all, q)
				got, err := db.FindAuditRecords(ctx, q)
				if err != nil || !slices.Equal(seqs(got), want) {
					t.Fatalf("%s: got %v (%v), want %v", describe(q), seqs(got), err, want)
				}
			}
		})
	}
}

// TestFindByWindowHugeLimit: a search by time with a limit far beyond
// audit.MaxFindLimit (only a direct caller of the store gives one) gets
// the plain walk's answer on both databases. The rounds' sizes, grown
// from 4 times the limit, overflowed: 2^60-250 made a round of no record
// that ran for ever (here: until the context's end), 2^61 a negative
// LIMIT that PostgreSQL refused.
func TestFindByWindowHugeLimit(t *testing.T) {
	for _, d := range storetest.Dialects() {
		t.Run(d.Name, func(t *testing.T) {
			db := storetest.Open(t, d.NewConfig(t))
			skewLog(t, db, 300)
			all, err := db.FindAuditRecords(ctxT(t), audit.Query{Limit: audit.MaxFindLimit, OldestFirst: true})
			if err != nil {
				t.Fatal(err)
			}
			for _, limit := range []int{1<<60 - 250, 1 << 61, 1<<62 + 1, math.MaxInt} {
				for _, oldest := range []bool{false, true} {
					q := audit.Query{Since: findBase.Add(50 * time.Second), Until: findBase.Add(200 * time.Second), Limit: limit, OldestFirst: oldest}
					ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
					got, err := db.FindAuditRecords(ctx, q)
					cancel()
					if want := wantFound(all, q); err != nil || !slices.Equal(seqs(got), want) {
						t.Fatalf("limit %d, oldest first %v: got %v (%v), want %v", limit, oldest, seqs(got), err, want)
					}
				}
			}
		})
	}
}
