package audit_test

import (
	"context"
	"fmt"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/thiqa/thiqa/internal/audit"
	"github.com/thiqa/thiqa/store"
	"github.com/thiqa/thiqa/store/storetest"
)

// BenchmarkAppend measures committed appends per second with concurrent
// writers on each dialect. SQLite runs in WAL mode with synchronous=NORMAL
// (the default); the throwaway PostgreSQL cluster of scripts/testenv.sh runs
// with fsync=off and synchronous_commit=off, so its figure is an upper
// bound for a server that flushes to disk.
//
// sqlite-syncfull is SQLite with synchronous=FULL (an fsync per commit).
func BenchmarkAppend(b *testing.B) {
	dialects := append(storetest.Dialects(), storetest.Dialect{Name: "sqlite-syncfull",
		NewConfig: func(t testing.TB) store.Config {
			return store.Config{Driver: store.DriverSQLite, DSN: filepath.Join(t.TempDir(), "thiqa.db"), Synchronous: "FULL"}
		}})
	for _, d := range dialects {
		b.Run(d.Name, func(b *testing.B) {
			for _, writers := range []int{1, 8, 64} {
				b.Run(fmt.Sprintf("writers=%d", writers), func(b *testing.B) {
					db := storetest.Open(b, d.NewConfig(b))
					reg := prometheus.NewRegistry()
					l := newLog(b, db, reg)
					e := audit.Entry{Actor: "bench", Action: "timestamp.issue", Object: "serial-0123456789abcdef",
						Outcome: audit.OutcomeSuccess, Details: map[string]any{"policy": "0.4.0.2023.1.1", "imprint": "sha256:00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff"}}
					var next atomic.Int64
					var wg sync.WaitGroup
					b.ResetTimer()
					for range writers {
						wg.Go(func() {
							for next.Add(1) <= int64(b.N) {
								if _, err := l.Append(context.Background(), e); err != nil {
									b.Error(err)
									return
								}
							}
						})
					}
					wg.Wait()
					b.StopTimer()
					b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "appends/s")
					b.ReportMetric(meanBatch(b, reg), "records/batch")
				})
			}
		})
	}
}

// meanBatch reads the mean of thiqa_audit_batch_size from reg.
func meanBatch(b *testing.B, reg *prometheus.Registry) float64 {
	mfs, err := reg.Gather()
	if err != nil {
		b.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == "thiqa_audit_batch_size" {
			h := mf.GetMetric()[0].GetHistogram()
			return h.GetSampleSum() / float64(h.GetSampleCount())
		}
	}
	b.Fatal("thiqa_audit_batch_size not registered")
	return 0
}
