package store_test

import (
	"context"
	"encoding/json"
	"io"
	"testing"
	"time"

	"github.com/thiqa/thiqa/internal/audit"
	"github.com/thiqa/thiqa/store"
	"github.com/thiqa/thiqa/store/storetest"
)

// BenchmarkAuditTallies times `thiqa audit report` (audit.CountActivity)
// on a log of THIQA_BENCH_AUDIT_ROWS records (default 1,000,000) filled by
// BenchmarkAuditAtScale's generator (a record every 1.5 s from 2026-01-01;
// a fifth of them collective time-stamp records), by month over the whole
// log and by day over its first week, next to the full chain walk
// (audit.Verify) on the same database. Each is run twice, alternated. Run
// by hand:
//
//	scripts/testenv.sh go test -count=1 -run '^$' -bench BenchmarkAuditTallies -benchtime 1x -timeout 1h ./store/
func BenchmarkAuditTallies(b *testing.B) {
	rows := envInt(b, "THIQA_BENCH_AUDIT_ROWS", 1_000_000)
	for _, d := range storetest.Dialects() {
		b.Run(d.Name, func(b *testing.B) {
			ctx := context.Background()
			db := storetest.Open(b, d.NewConfig(b))
			t0 := time.Now()
			genAudit(b, db, rows, 5000, 0, nil, nil)
			b.Logf("%s: filled %d audit records in %s", d.Name, rows, time.Since(t0).Round(time.Second))
			if d.Name == store.DriverPostgres {
				if err := db.ExecTx(ctx, "ANALYZE audit_log"); err != nil {
					b.Fatal(err)
				}
			}
			start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
			end := start.Add(time.Duration(rows+1) * 1500 * time.Millisecond)
			for b.Loop() {
				for round := range 2 {
					var events int64
					el, heap := peakHeap(func() {
						a, err := audit.CountActivity(ctx, db, start, end, audit.PeriodMonth)
						if err != nil {
							b.Fatal(err)
						}
						for _, r := range a.Rows {
							events += r.Events
						}
						if err := a.WriteText(io.Discard); err != nil {
							b.Fatal(err)
						}
					})
					b.Logf("%s round %d: report by month of %d records (%d events): %s, peak heap +%.1f MiB", d.Name, round+1, rows, events, el.Round(time.Millisecond), float64(heap)/(1<<20))
					b.ReportMetric(el.Seconds(), "month-s")
					el, _ = peakHeap(func() {
						if _, err := audit.CountActivity(ctx, db, start, start.Add(7*24*time.Hour), audit.PeriodDay); err != nil {
							b.Fatal(err)
						}
					})
					b.Logf("%s round %d: report by day of the first week: %s", d.Name, round+1, el.Round(time.Millisecond))
					el, _ = peakHeap(func() {
						rep, err := audit.Verify(ctx, db)
						if err != nil || !rep.OK() {
							b.Fatalf("Verify: %v %s", err, rep)
						}
					})
					b.Logf("%s round %d: the chain walk (audit.Verify) of the same log: %s", d.Name, round+1, el.Round(time.Millisecond))
					if round == 0 {
						if walked := walkEvents(b, db); walked != events {
							b.Fatalf("%s: the report counts %d events, a walk decoding every record %d", d.Name, events, walked)
						}
					}
				}
			}
		})
	}
}

// walkEvents counts the log's events by reading every record and decoding
// its details: a collective record's count, else one.
func walkEvents(b *testing.B, db *store.DB) int64 {
	var n int64
	err := db.AuditRecords(context.Background(), 1, func(r audit.Record) error {
		var c struct {
			Count *int64           `json:"count"`
			Items *json.RawMessage `json:"items"`
		}
		if err := json.Unmarshal(r.Details, &c); err != nil {
			return err
		}
		if c.Count != nil && c.Items != nil {
			n += *c.Count
		} else {
			n++
		}
		return nil
	})
	if err != nil {
		b.Fatal(err)
	}
	return n
}
