package store_test

import (
	"context"
	"log/slog"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/thiqa/thiqa/internal/audit"
	"github.com/thiqa/thiqa/store"
)

// BenchmarkIndexBuildBlocking measures, on PostgreSQL, how long audit
// appends from another connection wait while migration 0030 builds its
// index on a log of THIQA_BENCH_AUDIT_ROWS records (default 100,000): the
// plain build in a transaction, as releases before ran it, and the build
// Open runs now (CREATE INDEX CONCURRENTLY), alternated. One writer
// appends one record at a time during each build. Run by hand:
//
//	THIQA_BENCH_AUDIT_ROWS=1000000 scripts/testenv.sh go test -count=1 -run '^$' \
//	  -bench BenchmarkIndexBuildBlocking -benchtime 1x -timeout 1h ./store/
func BenchmarkIndexBuildBlocking(b *testing.B) {
	rows := envInt(b, "THIQA_BENCH_AUDIT_ROWS", 100_000)
	ctx := context.Background()
	d := postgresDialect(b)
	cfg := d.NewConfig(b)
	db, err := store.Open(ctx, cfg, nil)
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	t0 := time.Now()
	genAudit(b, db, rows, 5000, 0, nil, nil)
	b.Logf("filled %d audit records in %s", rows, time.Since(t0).Round(time.Second))
	if err := db.ExecTx(ctx, "ANALYZE audit_log"); err != nil {
		b.Fatal(err)
	}
	builds := map[string]func() error{
		"plain (before)": func() error {
			return db.ExecTx(ctx, "CREATE INDEX audit_log_action ON audit_log (action, seq)")
		},
		"concurrently (now)": func() error {
			db2, err := store.Open(ctx, cfg, slog.New(slog.DiscardHandler))
			if err == nil {
				err = db2.Close()
			}
			return err
		},
	}
	for b.Loop() {
		for range 3 {
			for _, mode := range []string{"plain (before)", "concurrently (now)"} {
				if err := db.ExecTx(ctx, "DROP INDEX audit_log_action"); err != nil {
					b.Fatal(err)
				}
				if err := db.ExecTx(ctx, "DELETE FROM schema_migrations WHERE version = '0030_audit_action'"); err != nil {
					b.Fatal(err)
				}
				var (
					wg   sync.WaitGroup
					stop = make(chan struct{})
					runs []appendRun
				)
				wg.Add(1)
				go func() {
					defer wg.Done()
					for {
						select {
						case <-stop:
							return
						default:
						}
						t := time.Now()
						err := db.AppendAuditRecords(ctx, func(h audit.Head) ([]audit.Record, error) { return chain(h, 1), nil })
						if err != nil {
							b.Error(err)
							return
						}
						runs = append(runs, appendRun{t, time.Since(t)})
					}
				}()
				time.Sleep(200 * time.Millisecond) // the writer is running
				t := time.Now()
				if err := builds[mode](); err != nil {
					b.Fatal(err)
				}
				build := time.Since(t)
				close(stop)
				wg.Wait()
				// The appends that ran during the build (even partly).
				var lats []time.Duration
				slow := 0
				for _, r := range runs {
					if r.start.Add(r.took).After(t) && r.start.Before(t.Add(build)) {
						lats = append(lats, r.took)
						if r.took > 100*time.Millisecond {
							slow++
						}
					}
				}
				slices.Sort(lats)
				var p50, top time.Duration
				if len(lats) > 0 {
					p50, top = lats[len(lats)/2], lats[len(lats)-1]
				}
				b.Logf("%s: build %s; %d appends during the build, median %s, longest %s, %d over 100 ms", mode, build.Round(time.Millisecond),
					len(lats), p50.Round(10*time.Microsecond), top.Round(time.Millisecond), slow)
			}
		}
	}
}

// appendRun is one append of BenchmarkIndexBuildBlocking's writer.
type appendRun struct {
	start time.Time
	took  time.Duration
}
