package store_test

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"errors"
	"fmt"
	mrand "math/rand/v2"
	"os"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/thiqa/thiqa/internal/audit"
	"github.com/thiqa/thiqa/store"
	"github.com/thiqa/thiqa/store/storetest"
)

// Objects of the generated audit log: hotCredential is an organisation's
// seal credential that signs a twentieth of everything (a hot object),
// hotSerial its certificate; coldSerial a citizen certificate with a
// handful of records.
const (
	hotCredential = "cred-org-seal-0001"
	hotSerial     = "5EA1000000000001"
	coldSerial    = "C17E000000000042"
)

// genAudit appends n records continuing the chain in db, in transactions
// of batch records through the store's own append path
// (AppendAuditRecords, hashes by audit.HashRecord), with a mix shaped like
// a national deployment's: logins, collective time-stamp records (about
// 1-2 kB of details), signatures (a twentieth by one seal credential),
// certificate issuance, reads and revocations, refusals. Every cpEvery
// records a checkpoint signed by key is written to cp (when not nil).
func genAudit(tb testing.TB, db *store.DB, n, batch, cpEvery int, key *ecdsa.PrivateKey, cp *bytes.Buffer) {
	tb.Helper()
	ctx := context.Background()
	start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	rng := mrand.New(mrand.NewPCG(1, 2))
	items := strings.Repeat(`{"imprint":"sha256:9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08","serial":123456789012},`, 16)
	for done := 0; done < n; {
		k := min(batch, n-done)
		err := db.AppendAuditRecords(ctx, func(h audit.Head) ([]audit.Record, error) {
			recs := make([]audit.Record, k)
			prev := h.Hash
			for i := range recs {
				seq := h.Seq + int64(i) + 1
				r := audit.Record{Seq: seq, Time: start.Add(time.Duration(seq) * 1500 * time.Millisecond), Outcome: audit.OutcomeSuccess, PrevHash: prev}
				switch x := rng.IntN(100); {
				case x < 40:
					r.Actor, r.Action, r.Object = fmt.Sprintf("citizen:%08d", rng.IntN(3_000_000)), "identity.login", "client-portal"
					r.Details = fmt.Appendf(nil, `{"acr":"urn:thiqa:mobile","client":"portal","ip":"10.%d.%d.%d","jti":"%016x"}`, rng.IntN(256), rng.IntN(256), rng.IntN(256), rng.Uint64())
				case x < 60:
					r.Actor, r.Action, r.Object = "tsa", "timestamp.issue", "tsa-unit-1"
					m := 4 + rng.IntN(12)
					r.Details = fmt.Appendf(nil, `{"count":%d,"items":[%s{"imprint":"x","serial":%d}]}`, m+1, items[:m*len(items)/16], seq)
				case x < 65:
					r.Actor, r.Action, r.Object = "org:ministry", "signing.seal", hotCredential
					r.Details = fmt.Appendf(nil, `{"digest":"%016x%016x","level":"B-LT","format":"pades"}`, rng.Uint64(), rng.Uint64())
				case x < 80:
					r.Actor, r.Action, r.Object = fmt.Sprintf("citizen:%08d", rng.IntN(3_000_000)), "signing.sign", fmt.Sprintf("cred-%08d", rng.IntN(2_000_000))
					r.Details = fmt.Appendf(nil, `{"digest":"%016x%016x","level":"B-T","format":"pades","sad":"%016x"}`, rng.Uint64(), rng.Uint64(), rng.Uint64())
				case x < 88:
					r.Actor, r.Action, r.Object = "ra:officer-7", "certificate.issue", fmt.Sprintf("%016X", rng.Uint64())
					r.Details = fmt.Appendf(nil, `{"profile":"citizen","subject":"CN=Citizen %d,serialNumber=IDCOM-%d,C=OM","notAfter":"2029-01-01T00:00:00Z"}`, rng.IntN(1e7), rng.IntN(1e8))
				case x < 94:
					r.Actor, r.Action, r.Object = "ra:officer-7", "certificate.read", fmt.Sprintf("%016X", rng.Uint64())
					r.Details = []byte(`{}`)
				case x < 97:
					r.Actor, r.Action, r.Object = "ra:officer-2", "certificate.revoke", fmt.Sprintf("%016X", rng.Uint64())
					r.Details = []byte(`{"reason":"keyCompromise"}`)
				default:
					r.Actor, r.Action, r.Object, r.Outcome = fmt.Sprintf("citizen:%08d", rng.IntN(3_000_000)), "signing.authorize", fmt.Sprintf("cred-%08d", rng.IntN(2_000_000)), audit.OutcomeRefused
					r.Details = []byte(`{"error":"wrong PIN","attemptsLeft":2}`)
				}
				switch {
				case seq%100_000 == 7:
					r.Object = coldSerial
				case seq%50_000 == 3:
					r.Object = hotSerial
				}
				r.Hash = audit.HashRecord(r)
				prev = r.Hash
				recs[i] = r
			}
			return recs, nil
		})
		if err != nil {
			tb.Fatalf("appending audit records at %d: %v", done, err)
		}
		done += k
		if cp != nil && cpEvery > 0 && done%cpEvery == 0 {
			h, err := db.AuditHead(ctx)
			if err != nil {
				tb.Fatal(err)
			}
			c, err := audit.SignCheckpoint(key, h, start.Add(time.Duration(h.Seq)*1500*time.Millisecond))
			if err != nil {
				tb.Fatal(err)
			}
			line, err := c.MarshalLine()
			if err != nil {
				tb.Fatal(err)
			}
			cp.Write(line)
		}
	}
}

// peakHeap samples the Go heap while fn runs and returns the highest
// HeapInuse seen above the heap before, and fn's duration.
func peakHeap(fn func()) (time.Duration, uint64) {
	runtime.GC()
	var base runtime.MemStats
	runtime.ReadMemStats(&base)
	var peak atomic.Uint64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		t := time.NewTicker(20 * time.Millisecond)
		defer t.Stop()
		for {
			var m runtime.MemStats
			runtime.ReadMemStats(&m)
			if m.HeapInuse > base.HeapInuse && m.HeapInuse-base.HeapInuse > peak.Load() {
				peak.Store(m.HeapInuse - base.HeapInuse)
			}
			select {
			case <-stop:
				return
			case <-t.C:
			}
		}
	}()
	t0 := time.Now()
	fn()
	el := time.Since(t0)
	close(stop)
	wg.Wait()
	return el, peak.Load()
}

// appendRate appends n records through an audit.Log from writers
// goroutines and returns records per second.
func appendRate(tb testing.TB, db *store.DB, n, writers int) float64 {
	tb.Helper()
	l := audit.New(db, nil, nil, audit.Options{})
	defer l.Close()
	var wg sync.WaitGroup
	var failed atomic.Int64
	t0 := time.Now()
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range n / writers {
				_, err := l.Append(context.Background(), audit.Entry{Actor: "bench", Action: "signing.sign", Object: fmt.Sprintf("cred-%d-%d", w, i), Outcome: audit.OutcomeSuccess,
					Details: map[string]any{"digest": "9f86d081884c7d659a2feaa0c55ad015", "level": "B-T"}})
				if err != nil {
					failed.Add(1)
				}
			}
		}()
	}
	wg.Wait()
	if failed.Load() > 0 {
		tb.Fatalf("%d appends failed", failed.Load())
	}
	return float64(n) / time.Since(t0).Seconds()
}

// latencies runs fn k times and returns p50 and p99.
func latencies(tb testing.TB, k int, fn func(i int) error) (time.Duration, time.Duration) {
	tb.Helper()
	lat := make([]time.Duration, 0, k)
	for i := range k {
		t := time.Now()
		if err := fn(i); err != nil {
			tb.Fatal(err)
		}
		lat = append(lat, time.Since(t))
	}
	slices.Sort(lat)
	return lat[len(lat)/2], lat[len(lat)*99/100]
}

// errStopWalk ends a walk early.
var errStopWalk = errors.New("stop")

// BenchmarkAuditAtScale fills an audit log with THIQA_BENCH_AUDIT_ROWS
// records (default 100,000; 10,000,000 for the documented figures) and
// measures what the services and commands do with it: appends at the head
// (against an empty log, same run), the full chain verification and the
// checkpoint verification (time, peak Go heap), a certificate's audit
// trail (a cold certificate, and a seal certificate whose credential is a
// hot object) and reading one record's hash by seq (what the checkpoint
// writer and a restore do per checkpoint). With THIQA_BENCH_AUDIT_DSN the
// sqlite or postgres sub-benchmark fills that existing database instead
// of a fresh one (a `thiqa init` folder's, to time the commands on it);
// THIQA_BENCH_AUDIT_CHECKPOINTS then names a file the signed checkpoints
// are written to (PEM key next to it, .pem), and THIQA_BENCH_AUDIT_FILL_ONLY=1
// stops after the fill and the appends. Run by hand:
//
//	THIQA_BENCH_AUDIT_ROWS=10000000 scripts/testenv.sh \
//	  go test -count=1 -run '^$' -bench BenchmarkAuditAtScale -benchtime 1x -timeout 3h ./store/
func BenchmarkAuditAtScale(b *testing.B) {
	rows := envInt(b, "THIQA_BENCH_AUDIT_ROWS", 100_000)
	for _, d := range storetest.Dialects() {
		b.Run(d.Name, func(b *testing.B) {
			ctx := context.Background()
			cfg := d.NewConfig(b)
			if dsn := os.Getenv("THIQA_BENCH_AUDIT_DSN"); dsn != "" {
				cfg.DSN = dsn
			}
			db := storetest.Open(b, cfg)
			key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
			if err != nil {
				b.Fatal(err)
			}
			h0, err := db.AuditHead(ctx)
			if err != nil {
				b.Fatal(err)
			}
			var cp bytes.Buffer
			t0 := time.Now()
			genAudit(b, db, rows, 5000, 50_000, key, &cp)
			fill := time.Since(t0)
			b.Logf("%s: filled %d audit records in %s (%.0f/s), from head %d", d.Name, rows, fill.Round(time.Second), float64(rows)/fill.Seconds(), h0.Seq)
			if d.Name == store.DriverPostgres {
				if err := db.ExecTx(ctx, "ANALYZE audit_log"); err != nil {
					b.Fatal(err)
				}
			}
			if p := os.Getenv("THIQA_BENCH_AUDIT_CHECKPOINTS"); p != "" {
				if err := os.WriteFile(p, cp.Bytes(), 0o600); err != nil {
					b.Fatal(err)
				}
				if err := audit.PublishCheckpointKey(p+".pem", key.Public()); err != nil {
					b.Fatal(err)
				}
			}
			appends := func() {
				// Appends at the head: a fresh log and this one, alternated.
				empty := storetest.Open(b, d.NewConfig(b))
				var rates [2][]string
				for range 3 {
					for i, x := range []*store.DB{empty, db} {
						rates[i] = append(rates[i], fmt.Sprintf("%.0f", appendRate(b, x, 4000, 8)))
					}
				}
				h, _ := db.AuditHead(ctx)
				b.Logf("%s: appends, 8 writers, records/s (alternated): %s on an empty log, %s on the log of %d records", d.Name,
					strings.Join(rates[0], ", "), strings.Join(rates[1], ", "), h.Seq)
			}
			if os.Getenv("THIQA_BENCH_AUDIT_FILL_ONLY") == "1" {
				for b.Loop() {
					appends()
				}
				return
			}
			for b.Loop() {
				appends()

				var rep audit.Report
				el, heap := peakHeap(func() {
					if rep, err = audit.Verify(ctx, db); err != nil {
						b.Fatal(err)
					}
				})
				if !rep.OK() {
					b.Fatalf("chain broken: %s", rep)
				}
				b.ReportMetric(el.Seconds(), "verify-s")
				b.Logf("%s: audit.Verify of %d records: %s (%.0f records/s), peak heap +%.1f MiB", d.Name, rep.Verified, el.Round(time.Millisecond),
					float64(rep.Verified)/el.Seconds(), float64(heap)/(1<<20))

				var crep audit.CheckpointReport
				el, heap = peakHeap(func() {
					if crep, err = audit.VerifyCheckpoints(ctx, db, bytes.NewReader(cp.Bytes()), key.Public()); err != nil {
						b.Fatal(err)
					}
				})
				if !crep.OK() {
					b.Fatalf("checkpoints: %s", crep)
				}
				b.Logf("%s: audit.VerifyCheckpoints, %d checkpoints: %s, peak heap +%.1f MiB", d.Name, crep.Verified, el.Round(time.Millisecond), float64(heap)/(1<<20))

				// `thiqa audit verify`: VerifyAll, the chain and the
				// checkpoints in one walk (before: Verify, then
				// VerifyCheckpoints, the two figures above one after the other).
				dir := b.TempDir()
				cpFile, pemFile := dir+"/checkpoints.jsonl", dir+"/key.pem"
				if err := os.WriteFile(cpFile, cp.Bytes(), 0o600); err != nil {
					b.Fatal(err)
				}
				if err := audit.PublishCheckpointKey(pemFile, key.Public()); err != nil {
					b.Fatal(err)
				}
				var out bytes.Buffer
				var ok bool
				el, heap = peakHeap(func() {
					if ok, err = audit.VerifyAll(ctx, db, cpFile, pemFile, &out); err != nil {
						b.Fatal(err)
					}
				})
				if !ok {
					b.Fatalf("VerifyAll: %s", out.String())
				}
				b.ReportMetric(el.Seconds(), "verifyall-s")
				b.Logf("%s: audit.VerifyAll (chain and checkpoints, one walk): %s, peak heap +%.1f MiB", d.Name, el.Round(time.Millisecond), float64(heap)/(1<<20))

				// The certificate audit trail as GET /certificates/{serial}/audit reads it.
				var n int
				p50, p99 := latencies(b, 200, func(int) error {
					e, err := db.Trail(ctx, []string{coldSerial, "cred-none"}, 201)
					n = len(e)
					return err
				})
				b.Logf("%s: trail of a cold certificate (%d records): p50 %s p99 %s", d.Name, n, p50, p99)
				p50, p99 = latencies(b, 50, func(int) error {
					e, err := db.Trail(ctx, []string{hotSerial, hotCredential}, 201)
					n = len(e)
					return err
				})
				b.ReportMetric(float64(p99.Microseconds()), "trail-hot-p99-µs")
				b.Logf("%s: trail of the hot seal certificate (%d records returned): p50 %s p99 %s", d.Name, n, p50, p99)
				// The query Trail ran before (one IN over both objects,
				// ORDER BY seq DESC), same run, for comparison.
				p50, p99 = latencies(b, 20, func(int) error {
					l, err := db.QueryLines(ctx, `SELECT seq, at_unix_ns, actor, action, object, outcome, details FROM audit_log
WHERE object IN (?, ?) ORDER BY seq DESC LIMIT ?`, hotSerial, hotCredential, 201)
					n = len(l)
					return err
				})
				b.Logf("%s: BEFORE (object IN, one sort): trail of the hot seal certificate (%d records returned): p50 %s p99 %s", d.Name, n, p50, p99)
				p50, p99 = latencies(b, 50, func(int) error {
					e, err := db.Trail(ctx, []string{hotCredential}, 1001)
					n = len(e)
					return err
				})
				b.Logf("%s: trail of one hot object, limit 1001 (the TSL sequence scan's shape; %d returned): p50 %s p99 %s", d.Name, n, p50, p99)

				// One record's hash by seq, as the checkpoint writer and a
				// restore's checkpoint split read it: the first record of a
				// page walk.
				top := rep.Head.Seq
				p50, p99 = latencies(b, 500, func(i int) error {
					seq := 1 + mrand.Int64N(top)
					err := db.AuditRecords(ctx, seq, func(audit.Record) error { return errStopWalk })
					if errors.Is(err, errStopWalk) {
						return nil
					}
					return err
				})
				b.Logf("%s: one record by seq through AuditRecords (a page walk stopped at once): p50 %s p99 %s", d.Name, p50, p99)
				p50, p99 = latencies(b, 500, func(i int) error {
					h, err := audit.RecordHash(ctx, db, 1+mrand.Int64N(top))
					if err == nil && h == nil {
						err = errors.New("no record")
					}
					return err
				})
				b.Logf("%s: one record's hash by seq, audit.RecordHash (primary-key read): p50 %s p99 %s", d.Name, p50, p99)
				p50, p99 = latencies(b, 200, func(int) error {
					_, err := db.AuditHead(ctx)
					return err
				})
				b.Logf("%s: AuditHead: p50 %s p99 %s", d.Name, p50, p99)
			}
		})
	}
}
