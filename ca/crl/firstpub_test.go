package crl

import (
	"context"
	"errors"
	"math/big"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// gatedNumbers hands out CRL numbers only once open is closed (a first
// publication slowed by a loaded machine or a busy HSM), or fails then
// with err.
type gatedNumbers struct {
	memNumbers
	open chan struct{}
	err  error
}

func (g *gatedNumbers) NextCRLNumber(ctx context.Context, issuer string) (*big.Int, error) {
	select {
	case <-g.open:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	if g.err != nil {
		return nil, g.err
	}
	return g.memNumbers.NextCRLNumber(ctx, issuer)
}

// TestPublisherServesTheFirstCRLNot404 (alone, as on SQLite, and shared,
// as on PostgreSQL): a server listens while its first CRLs are signed in
// the background (Run). A relying party asking for one of the CA's CRLs
// then waits for it and gets it, never a 404 saying the CRL does not exist
// (seen under load in cmd/thiqa TestIssueRefusedWhenRootCRLUnknown/postgres).
// When the first publication fails the answer is 503 with Retry-After;
// names the CA does not publish stay 404 at once.
func TestPublisherServesTheFirstCRLNot404(t *testing.T) {
	for _, mode := range []string{"alone", "shared"} {
		for _, fail := range []bool{false, true} {
			name := mode
			if fail {
				name += "/generation-fails"
			}
			t.Run(name, func(t *testing.T) {
				h := newHierarchy(t)
				set := settings(t, 1)
				nums := &gatedNumbers{open: make(chan struct{})}
				if fail {
					nums.err = errors.New("token unavailable")
				}
				g, err := NewGenerator(set, Issuer{Name: "citizen", Cert: h.ca, Signer: h.caKey}, nums, &memRevoked{partitions: 1})
				if err != nil {
					t.Fatal(err)
				}
				p, err := NewPublisher(set, nil, prometheus.NewRegistry(), g)
				if err != nil {
					t.Fatal(err)
				}
				if mode == "shared" {
					p.Share(newMemShared(), ShareOptions{SyncEvery: time.Hour})
				}
				ctx, cancel := context.WithCancel(t.Context())
				done := make(chan struct{})
				go func() { defer close(done); _ = p.Run(ctx) }()
				defer func() { cancel(); <-done }()

				srv := httptest.NewServer(p)
				defer srv.Close()
				// Not a CRL of this CA: 404 at once, first publication or not.
				start := time.Now()
				if resp, err := http.Get(srv.URL + "/crl/other.crl"); err != nil {
					t.Fatal(err)
				} else if resp.Body.Close(); resp.StatusCode != http.StatusNotFound || time.Since(start) > time.Second {
					t.Fatalf("/crl/other.crl: %d after %v, want 404 at once", resp.StatusCode, time.Since(start))
				}
				got := make(chan *http.Response, 1)
				go func() {
					resp, err := http.Get(srv.URL + "/crl/citizen.crl")
					if err != nil {
						t.Error(err)
					} else {
						resp.Body.Close()
					}
					got <- resp
				}()
				time.Sleep(300 * time.Millisecond) // the request is in before the CRL is signed
				close(nums.open)
				resp := <-got
				if resp == nil {
					return
				}
				want := http.StatusOK
				if fail {
					want = http.StatusServiceUnavailable
				}
				if resp.StatusCode != want {
					t.Fatalf("GET /crl/citizen.crl during the first publication: %d, want %d", resp.StatusCode, want)
				}
				if fail && resp.Header.Get("Retry-After") == "" {
					t.Fatal("503 without Retry-After")
				}
				if !fail && resp.Header.Get("Content-Type") != "application/pkix-crl" {
					t.Fatalf("Content-Type %q", resp.Header.Get("Content-Type"))
				}
			})
		}
	}
}

// TestFirstCRLWaitEndsAtShutdown: a request waiting for the first
// publication held the server's shutdown for up to firstWait (10 s), since
// the publication ends only once the server has stopped. StopWaiting,
// which the server calls as its shutdown begins, answers it 503 at once,
// and the requests that come after it too.
func TestFirstCRLWaitEndsAtShutdown(t *testing.T) {
	h := newHierarchy(t)
	set := settings(t, 1)
	nums := &gatedNumbers{open: make(chan struct{})} // the first publication never ends
	g, err := NewGenerator(set, Issuer{Name: "citizen", Cert: h.ca, Signer: h.caKey}, nums, &memRevoked{partitions: 1})
	if err != nil {
		t.Fatal(err)
	}
	p, err := NewPublisher(set, nil, prometheus.NewRegistry(), g)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan struct{})
	go func() { defer close(done); _ = p.Run(ctx) }()
	defer func() { cancel(); <-done }()
	srv := httptest.NewServer(p)
	defer srv.Close()

	got := timedGet(t, srv.URL+"/crl/citizen.crl")
	time.Sleep(300 * time.Millisecond) // the request waits
	p.StopWaiting()
	if a := <-got; a.code != http.StatusServiceUnavailable || a.took > 3*time.Second {
		t.Fatalf("a request waiting when the shutdown began: %d after %v, want 503 at once", a.code, a.took)
	}
	if a := <-timedGet(t, srv.URL+"/crl/citizen.crl"); a.code != http.StatusServiceUnavailable || a.took > 3*time.Second {
		t.Fatalf("a request after the shutdown began: %d after %v, want 503 at once", a.code, a.took)
	}
}

// stagedNumbers hands out the first CRL number once first is closed and
// every later one once rest is: a first publication whose first CRL is
// signed while the others (more partitions, more CAs) still wait.
type stagedNumbers struct {
	memNumbers
	first, rest chan struct{}
	mu          sync.Mutex
	calls       int
}

func (g *stagedNumbers) NextCRLNumber(ctx context.Context, issuer string) (*big.Int, error) {
	g.mu.Lock()
	g.calls++
	gate := g.rest
	if g.calls == 1 {
		gate = g.first
	}
	g.mu.Unlock()
	select {
	case <-gate:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	return g.memNumbers.NextCRLNumber(ctx, issuer)
}

// TestFirstCRLServedAsSoonAsSigned: a request waiting for the first
// publication looked again only when the whole publication was over (every
// partition of every CA) or after firstWait: a CRL signed early in it was
// answered 10 s late, or 503 had the publication failed later on. Now the
// request gets its CRL as soon as it is served.
func TestFirstCRLServedAsSoonAsSigned(t *testing.T) {
	h := newHierarchy(t)
	set := settings(t, 2) // citizen.crl, citizen-1.crl, citizen-2.crl, signed in that order
	nums := &stagedNumbers{first: make(chan struct{}), rest: make(chan struct{})}
	defer close(nums.rest)
	g, err := NewGenerator(set, Issuer{Name: "citizen", Cert: h.ca, Signer: h.caKey}, nums, &memRevoked{partitions: 2})
	if err != nil {
		t.Fatal(err)
	}
	p, err := NewPublisher(set, nil, prometheus.NewRegistry(), g)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan struct{})
	go func() { defer close(done); _ = p.Run(ctx) }()
	defer func() { cancel(); <-done }()
	srv := httptest.NewServer(p)
	defer srv.Close()

	got := timedGet(t, srv.URL+"/crl/citizen.crl")
	time.Sleep(300 * time.Millisecond) // the request waits
	close(nums.first)                  // citizen.crl is signed; the other partitions wait
	if a := <-got; a.code != http.StatusOK || a.took > 3*time.Second {
		t.Fatalf("GET /crl/citizen.crl, signed while the rest of the first publication waits: %d after %v, want 200 at once", a.code, a.took)
	}
}

// TestFirstCRLFromAnotherNodeServedAtOnce (shared): a node whose first
// publication waits for the CA's lock (another node holds it, for long)
// reads the CRL another node stored, and serves it, within SyncEvery; a
// request waiting for it was answered only when the lock came free or
// after firstWait. Now it gets the CRL as soon as the node serves it.
func TestFirstCRLFromAnotherNodeServedAtOnce(t *testing.T) {
	h := newHierarchy(t)
	set := settings(t, 1)
	g, err := NewGenerator(set, Issuer{Name: "citizen", Cert: h.ca, Signer: h.caKey}, &memNumbers{}, &memRevoked{partitions: 1})
	if err != nil {
		t.Fatal(err)
	}
	st := newMemShared()
	lock := &sync.Mutex{}
	lock.Lock() // another node holds the CA's lock (freed at the end: Exclusive waits on it)
	st.locks[lockName("citizen")] = lock
	p, err := NewPublisher(set, nil, prometheus.NewRegistry(), g)
	if err != nil {
		t.Fatal(err)
	}
	p.Share(st, ShareOptions{SyncEvery: 100 * time.Millisecond})
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan struct{})
	go func() { defer close(done); _ = p.Run(ctx) }()
	defer func() { cancel(); lock.Unlock(); <-done }()
	srv := httptest.NewServer(p)
	defer srv.Close()

	got := timedGet(t, srv.URL+"/crl/citizen.crl")
	time.Sleep(300 * time.Millisecond) // the request waits
	// The other node stores the CRL it signed.
	c, err := g.Generate(t.Context(), 0, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if err := st.SavePublished(t.Context(), &Published{Issuer: "citizen", Partition: 0, Fingerprint: g.fingerprint(),
		Complete: c, ServeFrom: time.Now()}); err != nil {
		t.Fatal(err)
	}
	if a := <-got; a.code != http.StatusOK || a.took > 3*time.Second {
		t.Fatalf("GET /crl/citizen.crl, stored by another node while this one waits for the lock: %d after %v, want 200 at once", a.code, a.took)
	}
}

// timedAnswer is the status of a GET and how long it took.
type timedAnswer struct {
	code int
	took time.Duration
}

// timedGet sends a GET for url in the background; the channel gets its
// answer (code 0 when it failed, after t.Error).
func timedGet(t *testing.T, url string) <-chan timedAnswer {
	t.Helper()
	got := make(chan timedAnswer, 1)
	go func() {
		start := time.Now()
		resp, err := http.Get(url)
		if err != nil {
			t.Error(err)
			got <- timedAnswer{took: time.Since(start)}
			return
		}
		resp.Body.Close()
		got <- timedAnswer{resp.StatusCode, time.Since(start)}
	}()
	return got
}
