package crl

import (
	"context"
	"math/big"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

func TestPublisherServesCRLsWithCacheHeaders(t *testing.T) {
	h := newHierarchy(t)
	set := settings(t, 2)
	src := &memRevoked{partitions: 2, entries: []RevokedEntry{{Serial: big.NewInt(77), RevokedAt: time.Now().Add(-time.Minute), Reason: 1}}}
	g, err := NewGenerator(set, Issuer{Name: "citizen", Cert: h.ca, Signer: h.caKey}, &memNumbers{}, src)
	if err != nil {
		t.Fatal(err)
	}
	reg := prometheus.NewRegistry()
	p, err := NewPublisher(set, nil, reg, g)
	if err != nil {
		t.Fatal(err)
	}
	if err := p.PublishAll(context.Background()); err != nil {
		t.Fatal(err)
	}
	// The alert rules watch each served CRL's nextUpdate.
	for _, name := range []string{"citizen.crl", "citizen-1.crl", "citizen-2.crl"} {
		c, _ := p.Latest(name)
		got := testutil.ToFloat64(p.nextUpdate.WithLabelValues(name))
		if c == nil || got != float64(c.NextUpdate.Unix()) || p.NextUpdateOf(name) != got {
			t.Fatalf("thiqa_crl_next_update_seconds{crl=%q} = %v, want the CRL's nextUpdate", name, got)
		}
	}
	if p.NextUpdateOf("other.crl") != 0 {
		t.Fatal("NextUpdateOf a CRL never published is not 0")
	}
	if n := testutil.CollectAndCount(reg, "thiqa_crl_next_update_seconds"); n != 3 {
		t.Fatalf("%d nextUpdate series, want 3", n)
	}
	srv := httptest.NewServer(p)
	defer srv.Close()
	resp, err := http.Get(srv.URL + "/crl/citizen-1.crl")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "application/pkix-crl" {
		t.Fatalf("status %d type %q", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	cc := resp.Header.Get("Cache-Control")
	age, _ := strconv.Atoi(strings.TrimPrefix(cc, "public, max-age="))
	if age <= 0 || age > int(set.MaxAge/time.Second) {
		t.Fatalf("Cache-Control %q", cc)
	}
	etag := resp.Header.Get("ETag")
	if etag == "" || resp.Header.Get("Last-Modified") == "" || resp.Header.Get("Expires") == "" {
		t.Fatalf("headers %v", resp.Header)
	}
	req, _ := http.NewRequest(http.MethodGet, srv.URL+"/crl/citizen-1.crl", nil)
	req.Header.Set("If-None-Match", etag)
	resp, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNotModified {
		t.Fatalf("conditional GET: %d", resp.StatusCode)
	}
	// Partitions the CA does not have, other CAs, other names: 404.
	for _, path := range []string{"/crl/citizen-0.crl", "/crl/citizen-3.crl", "/crl/citizen-01.crl", "/crl/other.crl", "/crl/other-1.crl", "/crl/citizen-1"} {
		resp, _ := http.Get(srv.URL + path)
		resp.Body.Close()
		if resp.StatusCode != 404 || resp.Header.Get("Content-Type") != "application/problem+json" {
			t.Errorf("%s: %d %s", path, resp.StatusCode, resp.Header.Get("Content-Type"))
		}
	}
	resp, _ = http.Post(srv.URL+"/crl/citizen.crl", "text/plain", nil)
	resp.Body.Close()
	if resp.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("POST: %d", resp.StatusCode)
	}
}

// countingNumbers counts CRL numbers handed out.
type countingNumbers struct {
	memNumbers
	n atomic.Int64
}

func (c *countingNumbers) NextCRLNumber(ctx context.Context, issuer string) (*big.Int, error) {
	c.n.Add(1)
	return c.memNumbers.NextCRLNumber(ctx, issuer)
}

func TestPublisherTriggerDebounces(t *testing.T) {
	h := newHierarchy(t)
	set := settings(t, 1)
	set.TriggerDelay = 50 * time.Millisecond
	nums := &countingNumbers{}
	g, _ := NewGenerator(set, Issuer{Name: "citizen", Cert: h.ca, Signer: h.caKey}, nums, &memRevoked{partitions: 1})
	p, err := NewPublisher(set, nil, nil, g)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go p.Run(ctx)
	waitFor(t, func() bool { _, ok := p.Latest("citizen.crl"); return ok })
	for range 20 { // a burst of revocations
		p.Trigger("citizen")
	}
	waitFor(t, func() bool { c, _ := p.Latest("citizen.crl"); return c.Number.Int64() == 2 })
	time.Sleep(150 * time.Millisecond)
	if n := nums.n.Load(); n != 2 {
		t.Fatalf("%d CRLs generated for one burst, want 2 (initial + one)", n)
	}
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not reached")
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// BenchmarkGenerateMillion generates CRLs for a CA with 1,000,000 revoked
// certificates, in one CRL and in 10 partitions, and reports time and the
// peak heap in use (sampled every millisecond).
func BenchmarkGenerateMillion(b *testing.B) {
	h := newHierarchy(b)
	for _, parts := range []int{1, 10} {
		b.Run("partitions="+strconv.Itoa(parts), func(b *testing.B) {
			set := settings(b, parts)
			g, err := NewGenerator(set, Issuer{Name: "citizen", Cert: h.ca, Signer: h.caKey}, &memNumbers{},
				synthRevoked{n: 1_000_000, partitions: parts})
			if err != nil {
				b.Fatal(err)
			}
			runtime.GC()
			var base runtime.MemStats
			runtime.ReadMemStats(&base)
			var peak atomic.Uint64
			stop := make(chan struct{})
			done := make(chan struct{})
			go func() {
				defer close(done)
				var m runtime.MemStats
				for {
					select {
					case <-stop:
						return
					case <-time.After(time.Millisecond):
					}
					runtime.ReadMemStats(&m)
					if m.HeapInuse > peak.Load() {
						peak.Store(m.HeapInuse)
					}
				}
			}()
			b.ResetTimer()
			var bytes, entries int
			for range b.N {
				bytes, entries = 0, 0
				for p := range parts {
					c, err := g.Generate(context.Background(), p, time.Now())
					if err != nil {
						b.Fatal(err)
					}
					bytes += len(c.DER)
					entries += c.Entries
				}
			}
			b.StopTimer()
			close(stop)
			<-done
			if entries != 1_000_000 {
				b.Fatalf("%d entries", entries)
			}
			b.ReportMetric(float64(bytes)/(1<<20), "CRL-MiB")
			b.ReportMetric(float64(peak.Load()-min(peak.Load(), base.HeapInuse))/(1<<20), "peak-heap-MiB")
		})
	}
}
