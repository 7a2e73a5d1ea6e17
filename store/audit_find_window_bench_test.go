package store_test

import (
	"context"
	"database/sql"
	"math"
	"slices"
	"testing"
	"time"

	"github.com/thiqa/thiqa/internal/audit"
	"github.com/thiqa/thiqa/store"
	"github.com/thiqa/thiqa/store/storetest"
)

// BenchmarkAuditFindWindowNearStart times searches by time whose window
// is wide but starts (in the search's order) close to the newest (or
// oldest) record, against the plain walk of the primary key (what
// findQuery's statement did before migration 0031) on the same log: until an hour
// before the head, newest first; since an hour after the start, oldest
// first; and two-sided windows of most of the log ending (starting) an
// hour from its head (start). The plain walk skips a few thousand records
// before its first match; a read of the window's index entries reads most
// of the log. Each answer is checked against the plain walk's. Run by hand:
//
//	THIQA_BENCH_AUDIT_ROWS=300000 scripts/testenv.sh \
//	  go test -v -count=1 -run '^$' -bench BenchmarkAuditFindWindowNearStart -benchtime 1x ./store/
func BenchmarkAuditFindWindowNearStart(b *testing.B) {
	rows := envInt(b, "THIQA_BENCH_AUDIT_ROWS", 100_000)
	start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	head := start.Add(time.Duration(rows) * 1500 * time.Millisecond)
	for _, d := range storetest.Dialects() {
		b.Run(d.Name, func(b *testing.B) {
			ctx := context.Background()
			cfg := d.NewConfig(b)
			db := storetest.Open(b, cfg)
			genAudit(b, db, rows, 5000, 0, nil, nil)
			if d.Name == store.DriverPostgres {
				// As autovacuum leaves an append-only table: analyzed, its
				// visibility map set (index-only reads).
				raw, err := sql.Open("pgx", cfg.DSN)
				if err != nil {
					b.Fatal(err)
				}
				_, err = raw.ExecContext(ctx, "VACUUM ANALYZE audit_log")
				_ = raw.Close()
				if err != nil {
					b.Fatal(err)
				}
			}
			searches := []struct {
				name string
				q    audit.Query
			}{
				{"--until head-1h", audit.Query{Until: head.Add(-time.Hour)}},
				{"--since start+1h --oldest-first", audit.Query{Since: start.Add(time.Hour), OldestFirst: true}},
				{"--since start+1h --until head-1h", audit.Query{Since: start.Add(time.Hour), Until: head.Add(-time.Hour)}},
				{"--since start+1h --until head-1h --oldest-first", audit.Query{Since: start.Add(time.Hour), Until: head.Add(-time.Hour), OldestFirst: true}},
				{"--since 2026-01-02 --until 2026-01-03", audit.Query{Since: start.Add(24 * time.Hour), Until: start.Add(48 * time.Hour)}},
			}
			for b.Loop() {
				for _, s := range searches {
					q := s.q
					q.Limit = 51
					// The walk of the primary key from the newest (oldest)
					// record, each tested: findQuery's plan before 0031 (with
					// the index, a planner may read the window by time).
					ps, pargs := store.FindRangeQuery(d.Name, q, 0, math.MaxInt64)
					var want []audit.Record
					timeIt := func(f func() ([]audit.Record, error)) (time.Duration, []audit.Record) {
						best := time.Duration(1<<63 - 1)
						var out []audit.Record
						for range 3 {
							t := time.Now()
							got, err := f()
							if err != nil {
								b.Fatal(err)
							}
							best, out = min(best, time.Since(t)), got
						}
						return best, out
					}
					plain, want := timeIt(func() ([]audit.Record, error) { return db.FindRecords(ctx, ps, pargs) })
					found, got := timeIt(func() ([]audit.Record, error) { return db.FindAuditRecords(ctx, q) })
					if !slices.Equal(seqs(got), seqs(want)) || len(want) != 51 {
						b.Fatalf("%s: %d records, want the plain walk's %d", s.name, len(got), len(want))
					}
					b.Logf("%s: %-50s plain walk %9s, FindAuditRecords %9s (best of 3)", d.Name, s.name, plain.Round(time.Microsecond), found.Round(time.Microsecond))
				}
			}
		})
	}
}
