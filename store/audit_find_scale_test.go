package store_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/thiqa/thiqa/internal/audit"
	"github.com/thiqa/thiqa/store"
	"github.com/thiqa/thiqa/store/storetest"
)

// BenchmarkAuditFindAtScale fills an audit log with THIQA_BENCH_AUDIT_ROWS
// records of the national mix (genAudit; default 100,000, 1,000,000 for
// the documented figures) and times the searches of `thiqa audit find`
// (FindAuditRecords, limit 50 plus the one that tells whether more
// match): by object (a cold serial, the hot seal credential), by actor (a
// busy officer, a citizen), by a frequent action, and by an action absent
// from the log (the worst case: every record is read), and by time alone
// (windows in the past, newest and oldest first, with an outcome, and
// one-sided); then what the index on (at_unix_ns, seq) of migration 0031
// costs (its build, appends with and without it), when it exists. Run by
// hand:
//
//	THIQA_BENCH_AUDIT_ROWS=1000000 scripts/testenv.sh \
//	  go test -v -count=1 -run '^$' -bench BenchmarkAuditFindAtScale -benchtime 1x -timeout 1h ./store/
//
// (-v: without it, the benchmark's output is cut after ten lines.)
func BenchmarkAuditFindAtScale(b *testing.B) {
	rows := envInt(b, "THIQA_BENCH_AUDIT_ROWS", 100_000)
	for _, d := range storetest.Dialects() {
		b.Run(d.Name, func(b *testing.B) {
			ctx := context.Background()
			db := storetest.Open(b, d.NewConfig(b))
			// (The benchmark's log keeps 10 lines: the fill is not one.)
			genAudit(b, db, rows, 5000, 0, nil, nil)
			if d.Name == store.DriverPostgres {
				if err := db.ExecTx(ctx, "ANALYZE audit_log"); err != nil {
					b.Fatal(err)
				}
			}
			// A citizen of the generated log: the actor of its newest login.
			last, err := db.FindAuditRecords(ctx, audit.Query{Actions: []string{"identity.login"}, Limit: 1})
			if err != nil || len(last) != 1 {
				b.Fatalf("finding a citizen: %v", err)
			}
			day := func(d int) time.Time { return time.Date(2026, 1, d, 0, 0, 0, 0, time.UTC) }
			searches := []struct {
				name string
				q    audit.Query
			}{
				{"--object " + coldSerial, audit.Query{Object: coldSerial}},
				{"--object " + hotCredential, audit.Query{Object: hotCredential}},
				{"--actor ra:officer-7", audit.Query{Actor: "ra:officer-7"}},
				{"--actor " + last[0].Actor, audit.Query{Actor: last[0].Actor}},
				{"--action certificate.revoke", audit.Query{Actions: []string{"certificate.revoke"}}},
				{"--action cmp.followup.failed (absent)", audit.Query{Actions: []string{"cmp.followup.failed"}}},
				{"--action certificate.revoke --oldest-first", audit.Query{Actions: []string{"certificate.revoke"}, OldestFirst: true}},
				{"--since 2026-01-05 --until 2026-01-06 --oldest-first", audit.Query{Since: day(5), Until: day(6), OldestFirst: true}},
				{"--since 2026-01-02 --until 2026-01-03", audit.Query{Since: day(2), Until: day(3)}},
				{"--outcome refused --since 2026-01-02T00 --until …T01", audit.Query{Outcome: audit.OutcomeRefused, Since: day(2), Until: day(2).Add(time.Hour)}},
				{"--since 2026-01-02 (from there to the head)", audit.Query{Since: day(2)}},
				{"--until 2026-01-02", audit.Query{Until: day(2)}},
			}
			for b.Loop() {
				for _, s := range searches {
					q := s.q
					q.Limit = audit.DefaultFindLimit + 1
					var first, best time.Duration
					var n int
					for i := range 3 {
						t := time.Now()
						recs, err := db.FindAuditRecords(ctx, q)
						if err != nil {
							b.Fatal(err)
						}
						el := time.Since(t)
						if i == 0 {
							first = el
						}
						if i == 0 || el < best {
							best = el
						}
						n = len(recs)
					}
					b.Logf("%s: %-55s %4d records, first %s, best of 3 %s", d.Name, s.name, n, first.Round(time.Microsecond), best.Round(time.Microsecond))
				}
				// What the index on (at_unix_ns, seq) (migration 0031) costs:
				// building it on this log (the upgrade), and appends with
				// and without it, alternated, on a fresh log and this one.
				// A commit before 0031 has no such index: nothing to measure.
				if n, err := db.QueryInt64(ctx, indexCountQuery(d.Name), atIndex); err != nil || n == 0 {
					b.Logf("%s: no index %s (%v): its cost not measured", d.Name, atIndex, err)
					continue
				}
				if err := db.ExecTx(ctx, "DROP INDEX "+atIndex); err != nil {
					b.Fatal(err)
				}
				t := time.Now()
				if err := db.ExecTx(ctx, "CREATE INDEX "+atIndex+" ON audit_log (at_unix_ns, seq)"); err != nil {
					b.Fatal(err)
				}
				b.Logf("%s: CREATE INDEX %s on %d records: %s", d.Name, atIndex, rows, time.Since(t).Round(time.Millisecond))
				with, without := storetest.Open(b, d.NewConfig(b)), storetest.Open(b, d.NewConfig(b))
				if err := without.ExecTx(ctx, "DROP INDEX "+atIndex); err != nil {
					b.Fatal(err)
				}
				var rates [4][]string
				for range 3 {
					for i, x := range []*store.DB{with, without} {
						rates[i] = append(rates[i], fmt.Sprintf("%.0f", appendRate(b, x, 4000, 8)))
					}
				}
				// On the big log: with, without, with, without, … (the
				// index dropped and built again between them).
				for k := range 6 {
					if k > 0 {
						stmt := "DROP INDEX " + atIndex
						if k%2 == 0 {
							stmt = "CREATE INDEX " + atIndex + " ON audit_log (at_unix_ns, seq)"
						}
						if err := db.ExecTx(ctx, stmt); err != nil {
							b.Fatal(err)
						}
					}
					rates[2+k%2] = append(rates[2+k%2], fmt.Sprintf("%.0f", appendRate(b, db, 4000, 8)))
				}
				b.Logf("%s: appends, 8 writers, records/s: empty log with the time index %s, without %s; log of %d with %s, without %s (all alternated)",
					d.Name, strings.Join(rates[0], ", "), strings.Join(rates[1], ", "), rows, strings.Join(rates[2], ", "), strings.Join(rates[3], ", "))
			}
		})
	}
}

// atIndex is the index on audit_log (at_unix_ns, seq) of migration 0031.
const atIndex = "audit_log_at"

// indexCountQuery counts the indexes named ? in the dialect's catalogue.
func indexCountQuery(dialect string) string {
	if dialect == store.DriverPostgres {
		return "SELECT count(*) FROM pg_indexes WHERE indexname = ?"
	}
	return "SELECT count(*) FROM sqlite_master WHERE type = 'index' AND name = ?"
}
