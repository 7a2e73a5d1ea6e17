package ocsp

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"io"
	"math/big"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/thiqa/thiqa/ca/ocsp/ocspbench"
)

const benchCerts = 10_000

func benchResponder(b *testing.B) (*Responder, [][]byte) {
	b.Helper()
	p := newPKI(b, "Bench")
	src := &memStatus{}
	reqs := make([][]byte, benchCerts)
	for i := range benchCerts {
		st := Status{State: Good}
		if i%10 == 0 {
			st = Status{State: Revoked, RevokedAt: time.Now().Add(-time.Hour), Reason: 1}
		}
		src.set("citizen", int64(100000+i), st)
		reqs[i], _ = NewRequest(p.ca, big.NewInt(int64(100000+i)), crypto.SHA1, nil)
	}
	r, err := New(testSettings(b), []Issuer{{Name: "citizen", Cert: p.ca, Responder: p.responder(b, 7*24*time.Hour)}}, src, NewCache(0), nil, nil)
	if err != nil {
		b.Fatal(err)
	}
	start := time.Now()
	if err := r.PresignAll(context.Background()); err != nil {
		b.Fatal(err)
	}
	b.Logf("pre-signed %d responses in %s (%.0f/s)", benchCerts, time.Since(start), benchCerts/time.Since(start).Seconds())
	return r, reqs
}

// nullWriter is a reusable http.ResponseWriter that discards the body.
type nullWriter struct{ h http.Header }

func (w *nullWriter) Header() http.Header         { return w.h }
func (w *nullWriter) Write(p []byte) (int, error) { return len(p), nil }
func (w *nullWriter) WriteHeader(int)             {}

// BenchmarkServePresigned measures pre-signed answers: through the handler
// in process (POST and GET), and over loopback HTTP with keep-alive
// clients on the same cores. The ceiling for comparison is raw in-process
// ECDSA P-256 signing, measured in the same run.
func BenchmarkServePresigned(b *testing.B) {
	r, reqs := benchResponder(b)
	b.Run("handler-POST", func(b *testing.B) {
		var n atomic.Int64
		b.RunParallel(func(pb *testing.PB) {
			w := &nullWriter{h: http.Header{}}
			i := int(n.Add(1)) * 7919
			for pb.Next() {
				i++
				req := httptest.NewRequest(http.MethodPost, "/ocsp", bytes.NewReader(reqs[i%len(reqs)]))
				req.Header.Set("Content-Type", "application/ocsp-request")
				r.ServeHTTP(w, req)
			}
		})
		b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "responses/s")
	})
	paths := make([]string, len(reqs))
	for i, q := range reqs {
		paths[i] = "/ocsp/" + base64.StdEncoding.EncodeToString(q)
	}
	b.Run("handler-GET", func(b *testing.B) {
		var n atomic.Int64
		b.RunParallel(func(pb *testing.PB) {
			w := &nullWriter{h: http.Header{}}
			i := int(n.Add(1)) * 7919
			for pb.Next() {
				i++
				r.ServeHTTP(w, httptest.NewRequest(http.MethodGet, paths[i%len(paths)], nil))
			}
		})
		b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "responses/s")
	})
	b.Run("loopback-HTTP-POST", func(b *testing.B) {
		srv := httptest.NewServer(r)
		defer srv.Close()
		client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64, DisableCompression: true}}
		b.SetParallelism(8)
		var n atomic.Int64
		b.RunParallel(func(pb *testing.PB) {
			i := int(n.Add(1)) * 7919
			for pb.Next() {
				i++
				resp, err := client.Post(srv.URL+"/ocsp", "application/ocsp-request", bytes.NewReader(reqs[i%len(reqs)]))
				if err != nil {
					b.Error(err)
					return
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
			}
		})
		b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "responses/s")
	})
	// The lean generator (ocspbench, what `thiqa bench ocsp` can use) on the
	// same cores: one iteration is a one-second run.
	for _, get := range []bool{false, true} {
		name := "loopback-ocspbench-POST"
		if get {
			name = "loopback-ocspbench-GET"
		}
		b.Run(name, func(b *testing.B) {
			srv := httptest.NewServer(r)
			defer srv.Close()
			var res ocspbench.Result
			for range b.N {
				var err error
				res, err = ocspbench.Run(context.Background(), ocspbench.Options{URL: srv.URL + "/ocsp", Requests: reqs, Conns: 16, Duration: time.Second, GET: get})
				if err != nil || res.Errors > 0 {
					b.Fatalf("%v %v", res, err)
				}
			}
			b.ReportMetric(res.PerSecond, "responses/s")
			b.ReportMetric(float64(res.P50.Microseconds()), "p50-µs")
			b.ReportMetric(float64(res.P99.Microseconds()), "p99-µs")
		})
	}
	b.Run("raw-ecdsa-p256-sign", func(b *testing.B) {
		k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		d := sha256.Sum256([]byte("x"))
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				k.Sign(rand.Reader, d[:], crypto.SHA256)
			}
		})
		b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "signatures/s")
	})
}
