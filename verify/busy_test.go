package verify

import (
	"bytes"
	"context"
	"crypto/x509"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/thiqa/thiqa/internal/clientip"
	"github.com/thiqa/thiqa/internal/problem"
)

// blockingFetcher is a responder that answers nothing until released: each
// verification that asks it stays in progress. It counts the fetches in
// progress and their peak.
type blockingFetcher struct {
	release chan struct{}
	once    sync.Once
	entered chan struct{}
	cur     atomic.Int32
	peak    atomic.Int32
}

func newBlockingFetcher() *blockingFetcher {
	return &blockingFetcher{release: make(chan struct{}), entered: make(chan struct{}, 64)}
}

// open lets every fetch, blocked or to come, return.
func (f *blockingFetcher) open() { f.once.Do(func() { close(f.release) }) }

func (f *blockingFetcher) block(ctx context.Context) ([]byte, error) {
	n := f.cur.Add(1)
	defer f.cur.Add(-1)
	for p := f.peak.Load(); n > p && !f.peak.CompareAndSwap(p, n); p = f.peak.Load() {
	}
	f.entered <- struct{}{}
	select {
	case <-f.release:
	case <-ctx.Done():
	}
	return nil, errors.New("test responder: no answer")
}

func (f *blockingFetcher) FetchOCSP(ctx context.Context, _, _ *x509.Certificate) ([]byte, error) {
	return f.block(ctx)
}

func (f *blockingFetcher) FetchCRL(ctx context.Context, _ *x509.Certificate) ([]byte, error) {
	return f.block(ctx)
}

// waitEntered waits until n verifications are blocked in the fetcher.
func (f *blockingFetcher) waitEntered(t *testing.T, n int) {
	t.Helper()
	for i := range n {
		select {
		case <-f.entered:
		case <-time.After(10 * time.Second):
			t.Fatalf("only %d of %d verifications reached the responder", i, n)
		}
	}
}

// busyRoute mounts the public route of a verifier whose document's
// revocation check blocks in f, behind the client resolution of `thiqa
// serve` (10.0.0.0/8 trusted as proxies).
func busyRoute(t *testing.T, f *blockingFetcher, o RouteOptions) (http.Handler, []byte, *prometheus.Registry) {
	t.Helper()
	t.Cleanup(f.open)
	p := newTestPKIWith(t, "http://ocsp.example/")
	pdf := p.signPDF(t, signOpts{})
	v := New(Options{TrustAnchors: []*x509.Certificate{p.root}, Fetcher: f, AllowOnline: true, FetchTimeout: time.Minute})
	mux := http.NewServeMux()
	reg := prometheus.NewPedanticRegistry()
	o.MaxUploadBytes, o.RatePerSecond, o.Burst, o.Registerer = 1<<20, 1000, 1000, reg
	if err := v.Register(mux, o); err != nil {
		t.Fatal(err)
	}
	proxies, err := clientip.New([]string{"10.0.0.0/8"})
	if err != nil {
		t.Fatal(err)
	}
	return proxies.Middleware(mux), pdf, reg
}

// post sends pdf from peer (with X-Forwarded-For xff when not empty) in
// the background; the response arrives on the channel.
func post(h http.Handler, pdf []byte, peer, xff string) <-chan *httptest.ResponseRecorder {
	out := make(chan *httptest.ResponseRecorder, 1)
	go func() {
		req := httptest.NewRequest(http.MethodPost, "/api/v1/verify", bytes.NewReader(pdf))
		req.Header.Set("Content-Type", "application/pdf")
		req.RemoteAddr = peer
		if xff != "" {
			req.Header.Set("X-Forwarded-For", xff)
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		out <- rec
	}()
	return out
}

// recv waits for a response, at most 10 s.
func recv(t *testing.T, ch <-chan *httptest.ResponseRecorder) *httptest.ResponseRecorder {
	t.Helper()
	select {
	case rec := <-ch:
		return rec
	case <-time.After(10 * time.Second):
		t.Fatal("no response within 10 s")
		return nil
	}
}

// wantBusy checks a 503 with Retry-After and a problem body.
func wantBusy(t *testing.T, rec *httptest.ResponseRecorder, detail string) {
	t.Helper()
	if rec.Code != http.StatusServiceUnavailable || rec.Header().Get("Retry-After") == "" ||
		rec.Header().Get("Content-Type") != problem.ContentType || !strings.Contains(rec.Body.String(), detail) {
		t.Fatalf("over the limit: %d %v %s", rec.Code, rec.Header(), rec.Body)
	}
}

// A client IP gets DefaultMaxConcurrentPerClient verifications at once;
// its next one waits, then gets 503 with Retry-After, while another
// client (here behind the trusted proxy) is served.
func TestBusyPerClient(t *testing.T) {
	f := newBlockingFetcher()
	h, pdf, reg := busyRoute(t, f, RouteOptions{MaxConcurrent: 10})
	a1, a2 := post(h, pdf, "192.0.2.7:1000", ""), post(h, pdf, "192.0.2.7:1001", "")
	f.waitEntered(t, 2)
	start := time.Now()
	rec := recv(t, post(h, pdf, "192.0.2.7:1002", ""))
	wantBusy(t, rec, "already has 2 verifications in progress")
	if el := time.Since(start); el < busyWait/2 {
		t.Errorf("refused after %s, without waiting for a slot", el)
	}
	// Spoofed forwarding headers from an untrusted peer change nothing.
	wantBusy(t, recv(t, post(h, pdf, "192.0.2.7:1003", "198.51.100.9")), "in progress")
	// Two clients behind the trusted proxy are two clients.
	b, c := post(h, pdf, "10.0.0.1:2000", "198.51.100.1"), post(h, pdf, "10.0.0.1:2001", "198.51.100.2")
	f.waitEntered(t, 2)
	f.open()
	for _, ch := range []<-chan *httptest.ResponseRecorder{a1, a2, b, c} {
		if rec := recv(t, ch); rec.Code != http.StatusOK {
			t.Fatalf("a verification within the limit: %d %s", rec.Code, rec.Body)
		}
	}
	if got := f.peak.Load(); got != 4 {
		t.Errorf("peak %d verifications in progress, want 4", got)
	}
	// Slots come back: the first client is served again.
	if rec := recv(t, post(h, pdf, "192.0.2.7:1004", "")); rec.Code != http.StatusOK {
		t.Fatalf("after the others finished: %d %s", rec.Code, rec.Body)
	}
	if got := sample(t, reg, "thiqa_verify_busy_total", "client"); got != 2 {
		t.Errorf("thiqa_verify_busy_total{limit=client} = %v, want 2", got)
	}
}

// Over all clients, no more than MaxConcurrent verifications run at once:
// the next one, from a client with none in progress, waits, then gets 503.
func TestBusyOverall(t *testing.T) {
	f := newBlockingFetcher()
	h, pdf, reg := busyRoute(t, f, RouteOptions{MaxConcurrent: 3})
	var running []<-chan *httptest.ResponseRecorder
	for _, peer := range []string{"192.0.2.1:1", "192.0.2.2:1", "192.0.2.3:1"} {
		running = append(running, post(h, pdf, peer, ""))
	}
	f.waitEntered(t, 3)
	if got := sample(t, reg, "thiqa_verify_in_flight", ""); got != 3 {
		t.Errorf("thiqa_verify_in_flight = %v, want 3", got)
	}
	wantBusy(t, recv(t, post(h, pdf, "192.0.2.4:1", "")), "as many documents as it can")
	// A request that waits gets the slot one gives back within the wait.
	late := post(h, pdf, "192.0.2.5:1", "")
	time.Sleep(busyWait / 4)
	f.open()
	for _, ch := range append(running, late) {
		if rec := recv(t, ch); rec.Code != http.StatusOK {
			t.Fatalf("a verification within the limit: %d %s", rec.Code, rec.Body)
		}
	}
	if got := f.peak.Load(); got != 3 {
		t.Errorf("peak %d verifications in progress, want 3", got)
	}
	if got := sample(t, reg, "thiqa_verify_busy_total", "overall"); got != 1 {
		t.Errorf("thiqa_verify_busy_total{limit=overall} = %v, want 1", got)
	}
	if err := testutil.GatherAndCompare(reg, strings.NewReader(`
# HELP thiqa_verify_requests_total POST /api/v1/verify requests by HTTP status (200: a report, 413: too large, 429: rate-limited).
# TYPE thiqa_verify_requests_total counter
thiqa_verify_requests_total{code="200"} 4
thiqa_verify_requests_total{code="503"} 1
`), "thiqa_verify_requests_total"); err != nil {
		t.Fatal(err)
	}
}

// sample returns the value of the counter or gauge name (with the label
// limit, when not empty).
func sample(t *testing.T, reg *prometheus.Registry, name, limit string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			if limit != "" && (len(m.GetLabel()) != 1 || m.GetLabel()[0].GetValue() != limit) {
				continue
			}
			if m.GetCounter() != nil {
				return m.GetCounter().GetValue()
			}
			return m.GetGauge().GetValue()
		}
	}
	t.Fatalf("no %s{limit=%q} gathered", name, limit)
	return 0
}
