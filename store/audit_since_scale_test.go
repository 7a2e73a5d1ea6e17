package store_test

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/thiqa/thiqa/internal/audit"
	"github.com/thiqa/thiqa/store"
	"github.com/thiqa/thiqa/store/storetest"
)

// BenchmarkAuditVerifySince compares the full verification (`thiqa audit
// verify`, audit.VerifyAll) with the incremental one over the last 1 % of
// the log (`--since`, audit.VerifySince from a checkpoint at 99 %), on a
// log of THIQA_BENCH_AUDIT_ROWS records (default 1,000,000) filled by
// BenchmarkAuditAtScale's generator, a checkpoint every 1 % of it. Each is
// run twice, alternated. Run by hand:
//
//	scripts/testenv.sh go test -count=1 -run '^$' -bench BenchmarkAuditVerifySince -benchtime 1x -timeout 1h ./store/
func BenchmarkAuditVerifySince(b *testing.B) {
	rows := envInt(b, "THIQA_BENCH_AUDIT_ROWS", 1_000_000)
	const batch = 5000
	every := max(batch, rows/100/batch*batch)
	for _, d := range storetest.Dialects() {
		b.Run(d.Name, func(b *testing.B) {
			ctx := context.Background()
			db := storetest.Open(b, d.NewConfig(b))
			key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
			if err != nil {
				b.Fatal(err)
			}
			var cp bytes.Buffer
			t0 := time.Now()
			genAudit(b, db, rows, batch, every, key, &cp)
			b.Logf("%s: filled %d audit records in %s, a checkpoint every %d", d.Name, rows, time.Since(t0).Round(time.Second), every)
			if d.Name == store.DriverPostgres {
				if err := db.ExecTx(ctx, "ANALYZE audit_log"); err != nil {
					b.Fatal(err)
				}
			}
			dir := b.TempDir()
			cpFile, pemFile := filepath.Join(dir, "checkpoints.jsonl"), filepath.Join(dir, "key.pem")
			if err := os.WriteFile(cpFile, cp.Bytes(), 0o600); err != nil {
				b.Fatal(err)
			}
			if err := audit.PublishCheckpointKey(pemFile, key.Public()); err != nil {
				b.Fatal(err)
			}
			since := int64(rows - every)
			// A year of checkpoints at the default 1 m over the same log:
			// the incremental run parses the lines before its anchor.
			yearFile := filepath.Join(dir, "year.jsonl")
			writeYearOfCheckpoints(b, db, key, yearFile, int64(rows))
			for b.Loop() {
				for round := range 2 {
					var out bytes.Buffer
					var ok bool
					el, heap := peakHeap(func() {
						if ok, err = audit.VerifyAll(ctx, db, cpFile, pemFile, &out); err != nil {
							b.Fatal(err)
						}
					})
					if !ok {
						b.Fatalf("VerifyAll: %s", out.String())
					}
					b.Logf("%s round %d: full (VerifyAll) of %d records: %s, peak heap +%.1f MiB", d.Name, round+1, rows, el.Round(time.Millisecond), float64(heap)/(1<<20))
					b.ReportMetric(el.Seconds(), "full-s")
					out.Reset()
					el, heap = peakHeap(func() {
						if ok, err = audit.VerifySince(ctx, db, cpFile, pemFile, since, &out); err != nil {
							b.Fatal(err)
						}
					})
					if !ok {
						b.Fatalf("VerifySince: %s", out.String())
					}
					b.Logf("%s round %d: incremental (VerifySince --since %d, the last %d records): %s, peak heap +%.1f MiB", d.Name, round+1, since, rows-int(since)+1, el.Round(time.Millisecond), float64(heap)/(1<<20))
					b.ReportMetric(el.Seconds(), "incremental-s")
				}
				for _, f := range []struct {
					name string
					run  func(out *bytes.Buffer) (bool, error)
				}{
					{"full (VerifyAll)", func(out *bytes.Buffer) (bool, error) { return audit.VerifyAll(ctx, db, yearFile, pemFile, out) }},
					{"incremental (VerifySince, the last 1 %)", func(out *bytes.Buffer) (bool, error) {
						return audit.VerifySince(ctx, db, yearFile, pemFile, since, out)
					}},
				} {
					var out bytes.Buffer
					var ok bool
					el, _ := peakHeap(func() {
						if ok, err = f.run(&out); err != nil {
							b.Fatal(err)
						}
					})
					if !ok {
						b.Fatalf("%s: %s", f.name, out.String())
					}
					b.Logf("%s: %s with a year of minute checkpoints (%d lines): %s", d.Name, f.name, yearLines, el.Round(time.Millisecond))
				}
			}
		})
	}
}

// yearLines is a year of checkpoints at the default audit.checkpointEvery (1 m).
const yearLines = 365 * 24 * 60

// writeYearOfCheckpoints writes yearLines checkpoints signed by key over
// the log in db (of rows records, evenly spread), a minute apart in 2025.
func writeYearOfCheckpoints(b *testing.B, db *store.DB, key *ecdsa.PrivateKey, path string, rows int64) {
	b.Helper()
	ctx := context.Background()
	start := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	var buf bytes.Buffer
	for i := range int64(yearLines) {
		seq := 1 + i*(rows-1)/(yearLines-1)
		h, err := audit.RecordHash(ctx, db, seq)
		if err != nil || h == nil {
			b.Fatalf("record %d: %v", seq, err)
		}
		c, err := audit.SignCheckpoint(key, audit.Head{Seq: seq, Hash: h}, start.Add(time.Duration(i)*time.Minute))
		if err != nil {
			b.Fatal(err)
		}
		line, err := c.MarshalLine()
		if err != nil {
			b.Fatal(err)
		}
		buf.Write(line)
	}
	if err := os.WriteFile(path, buf.Bytes(), 0o600); err != nil {
		b.Fatal(err)
	}
}
