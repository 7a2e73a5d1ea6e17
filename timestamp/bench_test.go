package timestamp

import (
	"bytes"
	"context"
	"crypto"
	"crypto/rand"
	"crypto/sha256"
	"io"
	"math/big"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/thiqa/thiqa/timestamp/tsp"
)

func reportRate(b *testing.B, start time.Time) {
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "tokens/s")
}

// BenchmarkRawP256Sign is the ceiling: the in-process P-256 signature alone.
func BenchmarkRawP256Sign(b *testing.B) {
	pki := newTestPKI(b, nil)
	d := sha256.Sum256([]byte("x"))
	start := time.Now()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := pki.unitKey.Sign(rand.Reader, d[:], crypto.SHA256); err != nil {
				b.Error(err)
			}
		}
	})
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "signs/s")
}

// BenchmarkIssueToken: parse, check, serial, record, TSTInfo, CMS, P-256
// signature, response encoding; in process, all cores.
func BenchmarkIssueToken(b *testing.B) {
	tsa := newTestTSA(b, Config{}, nil)
	req := opensslLikeQuery(b)
	b.ReportAllocs()
	b.ResetTimer()
	start := time.Now()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, st := tsa.Respond(context.Background(), req, ""); st.Status != 0 {
				b.Errorf("status %v", st)
			}
		}
	})
	reportRate(b, start)
}

// BenchmarkIssueTokenOneCore is BenchmarkIssueToken on one goroutine.
func BenchmarkIssueTokenOneCore(b *testing.B) {
	tsa := newTestTSA(b, Config{}, nil)
	req := opensslLikeQuery(b)
	b.ReportAllocs()
	b.ResetTimer()
	start := time.Now()
	for i := 0; i < b.N; i++ {
		if _, st := tsa.Respond(context.Background(), req, ""); st.Status != 0 {
			b.Fatalf("status %v", st)
		}
	}
	reportRate(b, start)
}

// BenchmarkHTTP goes through the handler over loopback HTTP/1.1 keep-alive
// (the load generator shares the cores).
func BenchmarkHTTP(b *testing.B) {
	tsa := newTestTSA(b, Config{}, nil)
	srv := httptest.NewServer(tsa.Handler(nil))
	defer srv.Close()
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}}
	req := opensslLikeQuery(b)
	b.ResetTimer()
	start := time.Now()
	b.SetParallelism(4)
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			resp, err := client.Post(srv.URL, QueryContentType, bytes.NewReader(req))
			if err != nil {
				b.Error(err)
				return
			}
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				b.Errorf("HTTP %d", resp.StatusCode)
			}
		}
	})
	reportRate(b, start)
}

func opensslLikeQuery(b testing.TB) []byte {
	// What `openssl ts -query -sha256 -cert` sends: imprint with NULL
	// parameters, a 64-bit nonce, certReq.
	return goQuery(b, func(r *tsp.Request) {
		r.MessageImprint.HashParams = []byte{5, 0}
		r.Nonce = new(big.Int).SetUint64(0xfedcba9876543210)
	})
}
