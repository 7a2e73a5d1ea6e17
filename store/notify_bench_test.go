package store_test

import (
	"context"
	"encoding/binary"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/thiqa/thiqa/internal/audit"
	"github.com/thiqa/thiqa/notify"
	"github.com/thiqa/thiqa/store"
	"github.com/thiqa/thiqa/store/storetest"
)

// BenchmarkNotifyBacklog measures how fast a backlog of audit records
// (THIQA_BENCH_NOTIFY_ROWS, default 100,000) is delivered to a gateway on
// loopback, one notification per record: half of them a citizen's login,
// half a PIN reset of one of 100 citizens' credentials (whose holder the
// notifier looks up), in batches of the default size. It reports
// notifications per second.
//
//	scripts/testenv.sh go test -run '^$' -bench BenchmarkNotifyBacklog -benchtime 1x -timeout 30m ./store
func BenchmarkNotifyBacklog(b *testing.B) {
	rows := envInt(b, "THIQA_BENCH_NOTIFY_ROWS", 100_000)
	const chunk = 5000
	for _, d := range storetest.Dialects() {
		b.Run(d.Name, func(b *testing.B) {
			ctx := context.Background()
			db := storetest.Open(b, d.NewConfig(b))
			a := newAuthority(b, db.Certificates(nil))
			var creds []string
			for i := range 100 {
				req := citizenRequest(b)
				req.Subject["civilNumber"], req.CredentialID = fmt.Sprintf("%08d", 10_000_000+i), fmt.Sprintf("cred-%03d", i)
				if _, err := a.Issue(ctx, req); err != nil {
					b.Fatal(err)
				}
				creds = append(creds, req.CredentialID)
			}
			g := newNotifyGateway(b)
			for b.Loop() {
				b.StopTimer()
				n := newNotifier(b, db, g, notify.Options{Holder: "bench"})
				drainNotifier(b, n) // the lease, the cursor at the head
				t0 := time.Now()
				for from := 0; from < rows; from += chunk {
					err := db.AppendAuditRecords(ctx, func(h audit.Head) ([]audit.Record, error) {
						recs := make([]audit.Record, min(chunk, rows-from))
						prev := h.Hash
						for i := range recs {
							k := from + i
							r := audit.Record{Seq: h.Seq + int64(i) + 1, Time: time.Now().UTC(), Outcome: audit.OutcomeSuccess, PrevHash: prev}
							if k%2 == 0 {
								r.Actor, r.Action, r.Object, r.Details = fmt.Sprintf("citizen:%08d", k%5000), "oidc.login", "tax", []byte(`{"method":"mtls"}`)
							} else {
								r.Actor, r.Action, r.Object, r.Details = "officer-1", "credential.pin.reset", creds[k%len(creds)], []byte(`{"kind":"citizen"}`)
							}
							r.Hash = audit.HashRecord(r)
							prev = r.Hash
							recs[i] = r
						}
						return recs, nil
					})
					if err != nil {
						b.Fatal(err)
					}
				}
				b.Logf("%s: %d audit records appended in %s", d.Name, rows, time.Since(t0).Round(time.Millisecond))
				before := g.count()
				b.StartTimer()
				t1 := time.Now()
				drainNotifier(b, n)
				el := time.Since(t1)
				b.StopTimer()
				sent := g.count() - before
				if sent != rows {
					b.Fatalf("%d notifications for %d records", sent, rows)
				}
				b.ReportMetric(float64(sent)/el.Seconds(), "notifications/s")
				b.Logf("%s: %d notifications in %s: %.0f/s", d.Name, sent, el.Round(time.Millisecond), float64(sent)/el.Seconds())
				if err := db.Notify().ReleaseLease(ctx, "bench"); err != nil {
					b.Fatal(err)
				}
				b.StartTimer()
			}
		})
	}
}

// BenchmarkNotifyExpiringPass times one pass of the expiry reminders over a
// mass issuance: THIQA_BENCH_EXPIRING_ROWS citizens' certificates (default
// 100,000) all expiring within the window, read 500 at a time, each
// recorded as reminded (one transaction each, as the notifier does after
// delivering it): paged by (notAfter, serial) as the notifier reads them,
// and, for comparison, each page read from the start of the window (what
// it did before: the reminded ones skipped by NOT EXISTS, so the pass is
// quadratic). notify_reminders holds a row per certificate for another
// window beforehand (the steady state: last month's pass), analysed. It
// logs the time spent reading the pages apart, and on PostgreSQL the plan
// of one page.
//
//	scripts/testenv.sh go test -v -count=1 -run '^$' -bench BenchmarkNotifyExpiringPass -benchtime 1x -timeout 1h ./store/
func BenchmarkNotifyExpiringPass(b *testing.B) {
	rows := envInt(b, "THIQA_BENCH_EXPIRING_ROWS", 100_000)
	for _, d := range storetest.Dialects() {
		b.Run(d.Name, func(b *testing.B) {
			ctx := context.Background()
			db := storetest.Open(b, d.NewConfig(b))
			der, subject := benchCertDER(b, "10000001")
			now := time.Now()
			for start := 0; start < rows; start += 500 {
				end := min(start+500, rows)
				var q, r strings.Builder
				var args, rargs []any
				q.WriteString(`INSERT INTO certificates (serial, ca, profile, state, tbs_hash, key_hash, requested_by, not_after, created_at,
					der, subject, not_before, issued_at, holder_civil) VALUES `)
				r.WriteString(`INSERT INTO notify_reminders (serial, window_name, sent_at) VALUES `)
				for i := start; i < end; i++ {
					if i > start {
						q.WriteString(",")
						r.WriteString(",")
					}
					key := make([]byte, 8)
					binary.BigEndian.PutUint64(key, uint64(i))
					serial := fmt.Sprintf("0c%010x", i)
					q.WriteString("(?, 'citizen', 'citizen-signing', 'issued', ?, ?, 'bench', ?, ?, ?, ?, ?, ?, ?)")
					// A mass issuance: a thousand a second, all within the window.
					args = append(args, serial, key, key, now.Add(24*time.Hour+time.Duration(i)*time.Millisecond).Unix(),
						now.UnixNano(), der, subject, now.Unix(), now.UnixNano(), fmt.Sprintf("%08d", 10_000_000+i))
					r.WriteString("(?, 'last-month', 0)")
					rargs = append(rargs, serial)
				}
				if err := db.ExecTx(ctx, q.String(), args...); err != nil {
					b.Fatal(err)
				}
				if err := db.ExecTx(ctx, r.String(), rargs...); err != nil {
					b.Fatal(err)
				}
			}
			if d.Name == store.DriverPostgres {
				if err := db.ExecTx(ctx, "ANALYZE certificates"); err != nil {
					b.Fatal(err)
				}
				if err := db.ExecTx(ctx, "ANALYZE notify_reminders"); err != nil {
					b.Fatal(err)
				}
			}
			st := db.Notify()
			deadline := now.Add(30 * 24 * time.Hour)
			for b.Loop() {
				for _, mode := range []struct {
					name, window string
					keyset       bool
				}{{"paged", "720h", true}, {"from the start each page", "721h", false}} {
					t0 := time.Now()
					var after notify.Expiring
					total, pages := 0, 0
					var reading time.Duration
					for {
						t1 := time.Now()
						due, err := st.Expiring(ctx, now, deadline, mode.window, after, 500)
						reading += time.Since(t1)
						if err != nil {
							b.Fatal(err)
						}
						for _, x := range due {
							if err := st.Reminded(ctx, x.Serial, []string{mode.window}, now); err != nil {
								b.Fatal(err)
							}
							if mode.keyset {
								after = x
							}
						}
						total, pages = total+len(due), pages+1
						if len(due) < 500 {
							break
						}
					}
					if total != rows {
						b.Fatalf("%d reminded, want %d", total, rows)
					}
					b.Logf("%s, %s: %d certificates in %d pages: %s (reading the pages %s, the rest recording each reminder)",
						d.Name, mode.name, total, pages, time.Since(t0).Round(time.Millisecond), reading.Round(time.Millisecond))
				}
			}
			if d.Name == store.DriverPostgres {
				plan, err := db.QueryLines(ctx, `EXPLAIN SELECT c.serial, c.holder_civil, c.not_after FROM certificates c
WHERE c.state = 'issued' AND c.not_after >= ? AND c.not_after <= ? AND (c.not_after > ? OR c.serial > ?)
	AND c.holder_civil IS NOT NULL AND c.holder_civil <> ''
	AND NOT EXISTS (SELECT 1 FROM revocations r WHERE r.serial = c.serial)
	AND NOT EXISTS (SELECT 1 FROM certificates s WHERE s.replaces = c.serial AND s.state <> 'abandoned' AND s.renewal_withdrawn_at IS NULL)
	AND NOT EXISTS (SELECT 1 FROM notify_reminders n WHERE n.serial = c.serial AND n.window_name = ? LIMIT 1 OFFSET 0)
ORDER BY c.not_after, c.serial LIMIT 500`, now.Unix()+1, deadline.Unix(), now.Unix(), "", "168h")
				if err != nil {
					b.Fatal(err)
				}
				b.Logf("plan:\n%s", strings.Join(plan, "\n"))
			}
		})
	}
}
