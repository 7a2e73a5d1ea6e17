package audit_test

import (
	"context"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/thiqa/thiqa/internal/audit"
	"github.com/thiqa/thiqa/store"
	"github.com/thiqa/thiqa/store/storetest"
)

// BenchmarkAppendLatency appends at a fixed rate (open loop, 3,000 a
// second, from as many goroutines as needed) for 3 s on a SQLite file and
// reports the latency from each append's scheduled time to its commit:
// p50, p99 and the worst. A checkpoint run inside a commit (fsyncs of the
// WAL and the database) shows as a p99 of several milliseconds.
func BenchmarkAppendLatency(b *testing.B) {
	const rate, d = 3000, 3 * time.Second
	for range b.N {
		db := storetest.Open(b, store.Config{Driver: store.DriverSQLite, DSN: filepath.Join(b.TempDir(), "thiqa.db")})
		l := newLog(b, db, nil)
		e := audit.Entry{Actor: "bench", Action: "timestamp.issue", Object: "1234567",
			Outcome: audit.OutcomeSuccess, Details: map[string]any{"policy": "0.4.0.2023.1.1", "imprint": "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff"}}
		due := make(chan time.Time, 4096)
		var mu sync.Mutex
		var lat []time.Duration
		var wg sync.WaitGroup
		for range 64 {
			wg.Go(func() {
				var local []time.Duration
				for at := range due {
					if _, err := l.Append(context.Background(), e); err != nil {
						b.Error(err)
						return
					}
					local = append(local, time.Since(at))
				}
				mu.Lock()
				lat = append(lat, local...)
				mu.Unlock()
			})
		}
		start := time.Now()
		interval := time.Second / rate
		for i := range int(d / interval) {
			at := start.Add(time.Duration(i) * interval)
			if w := time.Until(at); w > 0 {
				time.Sleep(w)
			}
			due <- at
		}
		close(due)
		wg.Wait()
		slices.Sort(lat)
		pct := func(p float64) float64 { return float64(lat[int(float64(len(lat)-1)*p)].Microseconds()) / 1000 }
		b.ReportMetric(pct(0.5), "p50-ms")
		b.ReportMetric(pct(0.99), "p99-ms")
		b.ReportMetric(pct(1), "max-ms")
	}
}
