package serve

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/thiqa/thiqa/internal/atomicfile"
)

// Options is what Run serves.
type Options struct {
	// Handler serves on Listener, over TLS when TLSConfig is set, with
	// the timeouts of NewServer.
	Handler   http.Handler
	Listener  net.Listener
	TLSConfig *tls.Config
	// Metrics, when MetricsListener is set, is served at GET /metrics on
	// that listener of its own.
	Metrics         http.Handler
	MetricsListener net.Listener
	// Background loops run from the start of serving until shutdown; each
	// returns once its context is done.
	Background []func(ctx context.Context)
	// ReadyFile, when set, receives the listening address once serving
	// (for scripts and tests).
	ReadyFile string
	// Grace bounds how long requests may finish on shutdown, and then how
	// long the background loops may take to stop.
	Grace time.Duration
	// Stopping functions run (each in a goroutine of its own) as soon as
	// the shutdown begins, while the requests in flight may still finish:
	// each ends a wait that would hold a request, and so the shutdown,
	// open (a CRL request waiting for the first publication).
	Stopping []func()
	// Stopped runs once the server has stopped, before the loops are
	// stopped (the last records of a run).
	Stopped func(ctx context.Context)
	Logger  *slog.Logger
}

// Run starts the background loops, serves until ctx is done or serving
// fails, then shuts the server down (requests may finish for at most
// o.Grace), calls o.Stopped, and stops the loops and waits for them for at
// most o.Grace more. The listeners are opened by the caller beforehand, so
// a port in use fails before anything starts. Run does not close them.
func Run(ctx context.Context, o Options) error {
	srv := NewServer(o.Handler, o.Logger)
	srv.TLSConfig = o.TLSConfig
	for _, f := range o.Stopping {
		srv.RegisterOnShutdown(f)
	}
	bgCtx, stopBackground := context.WithCancel(context.Background())
	var bg sync.WaitGroup
	for _, run := range o.Background {
		bg.Go(func() { run(bgCtx) })
	}
	defer func() {
		stopBackground()
		if !waitBounded(&bg, o.Grace) {
			o.Logger.Error("background loops did not stop in time; exiting anyway", "waited", o.Grace)
		}
	}()
	if o.MetricsListener != nil {
		stopMetrics := serveMetrics(o.MetricsListener, o.Metrics, o.Logger)
		defer stopMetrics()
		o.Logger.Info("serving metrics", "addr", o.MetricsListener.Addr().String())
	}

	served := make(chan error, 1)
	go func() {
		if o.TLSConfig != nil {
			served <- srv.ServeTLS(o.Listener, "", "")
		} else {
			served <- srv.Serve(o.Listener)
		}
	}()
	if o.ReadyFile != "" {
		if err := atomicfile.Write(o.ReadyFile, []byte(o.Listener.Addr().String()+"\n"), 0o600); err != nil {
			sctx, cancel := context.WithTimeout(context.Background(), o.Grace)
			defer cancel()
			_ = srv.Shutdown(sctx)
			return fmt.Errorf("ready file: %w", err)
		}
	}
	select {
	case err := <-served:
		return fmt.Errorf("serving: %w", err)
	case <-ctx.Done():
	}
	o.Logger.Info("shutting down")
	sctx, cancel := context.WithTimeout(context.Background(), o.Grace)
	defer cancel()
	shutdownErr := srv.Shutdown(sctx)
	if err := <-served; err != nil && !errors.Is(err, http.ErrServerClosed) {
		o.Logger.Warn("server stopped with an error", "err", err)
	}
	if o.Stopped != nil {
		o.Stopped(sctx)
	}
	if shutdownErr != nil {
		return fmt.Errorf("graceful shutdown: %w", shutdownErr)
	}
	o.Logger.Info("stopped")
	return nil
}

// NewServer returns a server of h with bounds on every phase of a request:
// headers within 10 seconds, the body within 2 minutes, the response
// within 5, and idle connections closed after 2. Its errors are logged as
// warnings.
func NewServer(h http.Handler, logger *slog.Logger) *http.Server {
	return &http.Server{
		Handler:           h,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       2 * time.Minute,
		WriteTimeout:      5 * time.Minute,
		IdleTimeout:       2 * time.Minute,
		ErrorLog:          slog.NewLogLogger(logger.Handler(), slog.LevelWarn),
	}
}

// waitBounded waits for wg for at most d and reports whether it finished.
func waitBounded(wg *sync.WaitGroup, d time.Duration) bool {
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-done:
		return true
	case <-t.C:
		return false
	}
}

// serveMetrics serves h at GET /metrics on ln and returns the function
// that stops it.
func serveMetrics(ln net.Listener, h http.Handler, logger *slog.Logger) func() {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", h)
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second, ReadTimeout: time.Minute, WriteTimeout: time.Minute,
		ErrorLog: slog.NewLogLogger(logger.Handler(), slog.LevelWarn)}
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			logger.Error("metrics listener stopped", "err", err)
		}
	}()
	return func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(ctx)
		<-done
	}
}
