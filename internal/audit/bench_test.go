package audit_test

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/thiqa/thiqa/internal/audit"
	"github.com/thiqa/thiqa/store/storetest"
)

// BenchmarkAppend measures committed appends per second with concurrent
// writers on each dialect. SQLite runs in WAL mode with synchronous=NORMAL
// (the default); the throwaway PostgreSQL cluster of scripts/testenv.sh runs
// with fsync=off and synchronous_commit=off, so its figure is an upper
// bound for a server that flushes to disk.
func BenchmarkAppend(b *testing.B) {
	for _, d := range storetest.Dialects() {
		b.Run(d.Name, func(b *testing.B) {
			for _, writers := range []int{1, 8, 64} {
				b.Run(fmt.Sprintf("writers=%d", writers), func(b *testing.B) {
					db := storetest.Open(b, d.NewConfig(b))
					l := newLog(b, db, nil)
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
				})
			}
		})
	}
}
