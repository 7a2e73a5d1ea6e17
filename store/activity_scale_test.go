package store_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/thiqa/thiqa/identity/activity"
	"github.com/thiqa/thiqa/internal/audit"
	"github.com/thiqa/thiqa/store"
	"github.com/thiqa/thiqa/store/storetest"
)

// BenchmarkActivityAtScale times a page of a citizen's activity
// (activity.Store.ActivityRecords, what GET /api/v1/me/activity reads) on
// a log of THIQA_BENCH_AUDIT_ROWS records (default 1,000,000) filled by
// BenchmarkAuditAtScale's generator: 40 % of them logins by 3 million
// citizens under "citizen:<civil>", a twentieth an organisation's seal
// credential. A bench citizen then gets 300 records of their own (logins,
// signatures, their certificate's records) among 20,000 newer ones of
// others. Timed, p50 and p99 of 200 reads each: the newest page, the page
// below it (?before=), a deep page (before the fill's middle: index
// searches that find nothing) and a citizen with no record at all; then
// the append rate at the head of this log (8 writers) against an empty
// one, alternated. Run by hand:
//
//	scripts/testenv.sh go test -count=1 -run '^$' -bench BenchmarkActivityAtScale -benchtime 1x -timeout 1h ./store/
func BenchmarkActivityAtScale(b *testing.B) {
	rows := envInt(b, "THIQA_BENCH_AUDIT_ROWS", 1_000_000)
	for _, d := range storetest.Dialects() {
		b.Run(d.Name, func(b *testing.B) {
			ctx := context.Background()
			db := storetest.Open(b, d.NewConfig(b))
			t0 := time.Now()
			genAudit(b, db, rows, 5000, 0, nil, nil)
			b.Logf("%s: filled %d audit records in %s", d.Name, rows, time.Since(t0).Round(time.Second))
			const civil, serial, cred = "99999999", "0bead", "cred-bench"
			log := audit.New(db, nil, nil, audit.Options{})
			for i := range 300 {
				e := audit.Entry{Actor: "citizen:" + civil, Action: "oidc.login", Object: "client-portal", Outcome: audit.OutcomeSuccess}
				switch i % 3 {
				case 1:
					e = audit.Entry{Actor: civil, Action: "document.sign", Object: cred, Outcome: audit.OutcomeSuccess}
				case 2:
					e = audit.Entry{Actor: "ra:officer-7", Action: "certificate.read", Object: serial, Outcome: audit.OutcomeSuccess}
				}
				if _, err := log.Append(ctx, e); err != nil {
					b.Fatal(err)
				}
				genAudit(b, db, 66, 66, 0, nil, nil)
			}
			log.Close()
			if d.Name == store.DriverPostgres {
				if err := db.ExecTx(ctx, "ANALYZE audit_log"); err != nil {
					b.Fatal(err)
				}
			}
			q := func(civil string, before int64, objects ...string) activity.Query {
				return activity.Query{Objects: append(objects, "citizen:"+civil), Actors: activity.CitizenActors(civil), Before: before,
					Limit: activity.PageSize + 1}
			}
			a := db.Activity()
			first, err := a.ActivityRecords(ctx, q(civil, 0, serial, cred))
			if err != nil || len(first) != activity.PageSize+1 {
				b.Fatalf("the newest page: %d records, %v", len(first), err)
			}
			second := first[activity.PageSize-1].Seq
			stmt, args := store.ActivityQuery(q(civil, 0, serial, cred))
			explain := "EXPLAIN QUERY PLAN "
			if d.Name == store.DriverPostgres {
				explain = "EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF) "
			}
			plan, err := db.QueryLines(ctx, explain+stmt, args...)
			if err != nil {
				b.Fatal(err)
			}
			b.Logf("%s: the newest page's plan:\n%s", d.Name, strings.Join(plan, "\n"))
			for b.Loop() {
				for _, c := range []struct {
					name string
					q    activity.Query
				}{
					{"newest page", q(civil, 0, serial, cred)},
					{"second page", q(civil, second, serial, cred)},
					{"deep page (nothing older)", q(civil, int64(rows/2), serial, cred)},
					{"a citizen with no record", q("00000000x", 0, "0dead", "cred-none")},
				} {
					n := 0
					p50, p99 := latencies(b, 200, func(int) error {
						got, err := a.ActivityRecords(ctx, c.q)
						n = len(got)
						return err
					})
					b.Logf("%s: %s (%d records): p50 %s, p99 %s", d.Name, c.name, n, p50.Round(time.Microsecond), p99.Round(time.Microsecond))
				}
				empty := storetest.Open(b, d.NewConfig(b))
				var rates [2][]string
				for range 3 {
					for i, x := range []*store.DB{empty, db} {
						rates[i] = append(rates[i], fmt.Sprintf("%.0f", appendRate(b, x, 4000, 8)))
					}
				}
				b.Logf("%s: appends/s (8 writers), empty log %v, this log %v", d.Name, rates[0], rates[1])
			}
		})
	}
}
