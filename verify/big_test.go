package verify

import (
	"context"
	"crypto/x509"
	"os"
	"path/filepath"
	"runtime"
	"sync/atomic"
	"testing"
	"time"

	"github.com/thiqa/thiqa/verify/report"
)

// BenchmarkLargePDFMemory verifies a ~200 MB signed PDF from a file and
// reports the peak heap in use; the ByteRange is hashed in a streaming
// fashion, so the heap stays far below the file size.
func BenchmarkLargePDFMemory(b *testing.B) {
	t := b
	p := newTestPKI(t)
	file := filepath.Join(t.TempDir(), "big.pdf")
	pdf := p.signPDF(t, signOpts{padding: 200 << 20})
	if err := os.WriteFile(file, pdf, 0o600); err != nil {
		t.Fatal(err)
	}
	pdf = nil //nolint:ineffassign // release before measuring
	runtime.GC()
	fh, err := os.Open(file)
	if err != nil {
		t.Fatal(err)
	}
	defer fh.Close()
	st, _ := fh.Stat()
	var peak atomic.Uint64
	stop := make(chan struct{})
	go func() {
		var ms runtime.MemStats
		for {
			select {
			case <-stop:
				return
			case <-time.After(2 * time.Millisecond):
				runtime.ReadMemStats(&ms)
				if ms.HeapInuse > peak.Load() {
					peak.Store(ms.HeapInuse)
				}
			}
		}
	}()
	b.ResetTimer()
	v := New(Options{TrustAnchors: []*x509.Certificate{p.root}, Revocation: RevocationIgnored})
	for i := 0; i < b.N; i++ {
		r, err := v.VerifyPDF(context.Background(), fh, st.Size())
		if err != nil || r.Indication != report.TotalPassed {
			b.Fatalf("%v %s", err, summary(r))
		}
	}
	b.StopTimer()
	close(stop)
	b.SetBytes(st.Size())
	b.ReportMetric(float64(peak.Load())/(1<<20), "peak-heap-MiB")
	if peak.Load() > 64<<20 {
		b.Errorf("peak heap %d MiB for a %d MB file", peak.Load()>>20, st.Size()>>20)
	}
}
