package serve

import (
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func listen(t *testing.T) net.Listener {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	return ln
}

// Run serves, runs the loops while serving, writes the ready file, and on
// cancellation stops the server, records the stop, then stops the loops.
func TestRunServesAndStops(t *testing.T) {
	ln, mln := listen(t), listen(t)
	ready := filepath.Join(t.TempDir(), "ready")
	loopDone := make(chan struct{})
	var order []string
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() {
		errc <- Run(ctx, Options{
			Handler:  http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, "ok") }),
			Listener: ln, Metrics: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, "m") }),
			MetricsListener: mln, ReadyFile: ready, Grace: 5 * time.Second, Logger: slog.New(slog.DiscardHandler),
			Background: []func(context.Context){func(ctx context.Context) {
				<-ctx.Done()
				order = append(order, "loop stopped")
				close(loopDone)
			}},
			Stopped: func(context.Context) { order = append(order, "stopped") },
		})
	}()
	var addr []byte
	for i := 0; i < 100 && len(addr) == 0; i++ {
		addr, _ = os.ReadFile(ready)
		time.Sleep(20 * time.Millisecond)
	}
	if strings.TrimSpace(string(addr)) != ln.Addr().String() {
		t.Fatalf("ready file %q, want %s", addr, ln.Addr())
	}
	for _, u := range []string{"http://" + ln.Addr().String() + "/", "http://" + mln.Addr().String() + "/metrics"} {
		resp, err := http.Get(u)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("%s: %d", u, resp.StatusCode)
		}
	}
	cancel()
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
	<-loopDone
	if strings.Join(order, ", ") != "stopped, loop stopped" {
		t.Fatalf("order %q: the stop is recorded before the loops stop", order)
	}
}

// TestRunStoppingEndsWaits: the Stopping functions run as the shutdown
// begins, while requests finish, so that a request waiting for something
// the loops bring (a CRL request for the first publication) is answered
// then instead of holding the shutdown for its whole wait.
func TestRunStoppingEndsWaits(t *testing.T) {
	ln := listen(t)
	ready := filepath.Join(t.TempDir(), "ready")
	stop := make(chan struct{})
	in := make(chan struct{})
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() {
		errc <- Run(ctx, Options{
			Handler: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
				close(in)
				select {
				case <-stop:
				case <-time.After(10 * time.Second):
				}
				io.WriteString(w, "answered")
			}),
			Listener: ln, ReadyFile: ready, Grace: 20 * time.Second, Logger: slog.New(slog.DiscardHandler),
			Stopping: []func(){func() { close(stop) }},
		})
	}()
	for i := 0; i < 100; i++ {
		if b, _ := os.ReadFile(ready); len(b) > 0 {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	answered := make(chan string, 1)
	go func() {
		resp, err := http.Get("http://" + ln.Addr().String() + "/crl/citizen.crl")
		if err != nil {
			answered <- err.Error()
			return
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		answered <- string(b)
	}()
	<-in
	start := time.Now()
	cancel()
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Fatalf("the shutdown took %v with a request waiting, want it ended at once", d)
	}
	if a := <-answered; a != "answered" {
		t.Fatalf("the waiting request got %q, want its answer", a)
	}
}

// A loop that ignores its context does not hold the process beyond the
// grace period.
func TestRunBoundsTheLoops(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	block := make(chan struct{})
	defer close(block)
	start := time.Now()
	err := Run(ctx, Options{Handler: http.NotFoundHandler(), Listener: listen(t), Grace: 200 * time.Millisecond,
		Logger: slog.New(slog.DiscardHandler), Background: []func(context.Context){func(context.Context) { <-block }}})
	if err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Fatalf("Run took %s with a stuck loop", d)
	}
}

// A server that cannot serve ends Run with the error.
func TestRunReportsServeFailure(t *testing.T) {
	ln := listen(t)
	ln.Close()
	err := Run(context.Background(), Options{Handler: http.NotFoundHandler(), Listener: ln, Grace: time.Second, Logger: slog.New(slog.DiscardHandler)})
	if err == nil || !strings.HasPrefix(err.Error(), "serving: ") {
		t.Fatalf("got %v", err)
	}
}
