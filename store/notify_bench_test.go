package store_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/thiqa/thiqa/internal/audit"
	"github.com/thiqa/thiqa/notify"
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
