package store_test

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/thiqa/thiqa/internal/audit"
	"github.com/thiqa/thiqa/store"
	"github.com/thiqa/thiqa/store/storetest"
)

// sqliteSize says the size of a SQLite database file and of its WAL,
// after checkpointing the WAL into it.
func sqliteSize(ctx context.Context, db *store.DB, path string) string {
	for range 3 { // a reader may hold the WAL for a moment
		if err := db.ExecRaw(ctx, "PRAGMA wal_checkpoint(TRUNCATE)"); err != nil {
			return "wal_checkpoint: " + err.Error()
		}
		time.Sleep(100 * time.Millisecond)
	}
	size := func(p string) float64 {
		st, err := os.Stat(p)
		if err != nil {
			return 0
		}
		return float64(st.Size()) / (1 << 20)
	}
	return fmt.Sprintf("%.1f MiB (WAL %.1f MiB)", size(path), size(path+"-wal"))
}

// BenchmarkArchiveAtScale measures `thiqa audit archive` (audit.Archive)
// of a generated log of THIQA_BENCH_ARCHIVE_ROWS records (default
// 100,000; a checkpoint every 50,000): time, file size and, on SQLite,
// the database's size before, after and after VACUUM. Run it once:
//
//	THIQA_BENCH_ARCHIVE_ROWS=1000000 scripts/testenv.sh go test -run '^$' \
//	  -bench BenchmarkArchiveAtScale -benchtime 1x -timeout 60m ./store/
func BenchmarkArchiveAtScale(b *testing.B) {
	rows := envInt(b, "THIQA_BENCH_ARCHIVE_ROWS", 100_000)
	for _, d := range storetest.Dialects() {
		b.Run(d.Name, func(b *testing.B) {
			ctx := context.Background()
			cfg := d.NewConfig(b)
			db := storetest.Open(b, cfg)
			key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
			if err != nil {
				b.Fatal(err)
			}
			var cp bytes.Buffer
			t0 := time.Now()
			genAudit(b, db, rows, 5000, 50_000, key, &cp)
			b.Logf("%s: filled %d audit records in %s", d.Name, rows, time.Since(t0).Round(time.Second))
			dir := b.TempDir()
			cps, pub := filepath.Join(dir, "checkpoints.jsonl"), filepath.Join(dir, "checkpoint.pem")
			if err := os.WriteFile(cps, cp.Bytes(), 0o600); err != nil {
				b.Fatal(err)
			}
			if err := audit.PublishCheckpointKey(pub, key.Public()); err != nil {
				b.Fatal(err)
			}
			if d.Name == store.DriverSQLite {
				b.Logf("sqlite: database before: %s", sqliteSize(ctx, db, cfg.DSN))
			}
			for b.Loop() {
				t1 := time.Now()
				res, err := audit.Archive(ctx, db, audit.ArchiveOptions{Through: int64(rows), Out: filepath.Join(dir, "audit-archive.jsonl.gz"),
					CheckpointFile: cps, CheckpointKeyFile: pub, Actor: "bench"})
				if err != nil {
					b.Fatal(err)
				}
				el := time.Since(t1)
				b.ReportMetric(el.Seconds(), "archive-s")
				b.Logf("%s: archived %d records (seq %d-%d) in %s (%.0f records/s), file %.1f MiB (%d bytes)", d.Name, res.Records,
					res.Row.FirstSeq, res.Row.LastSeq, el.Round(time.Millisecond), float64(res.Records)/el.Seconds(), float64(res.Bytes)/(1<<20), res.Bytes)
			}
			rep, err := audit.Verify(ctx, db)
			if err != nil || !rep.OK() {
				b.Fatalf("verify after the archive: %s %v", rep, err)
			}
			if d.Name == store.DriverSQLite {
				b.Logf("sqlite: database after: %s (the freed pages stay in the file for reuse)", sqliteSize(ctx, db, cfg.DSN))
				t0 := time.Now()
				if err := db.CompactSQLite(ctx); err != nil {
					b.Logf("CompactSQLite: %v", err)
				} else {
					b.Logf("sqlite: database after CompactSQLite (thiqa audit compact) in %s: %s", time.Since(t0).Round(time.Millisecond), sqliteSize(ctx, db, cfg.DSN))
				}
			}
		})
	}
}
