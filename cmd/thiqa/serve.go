package main

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/thiqa/thiqa/api"
	"github.com/thiqa/thiqa/cmd/thiqa/internal/config"
	"github.com/thiqa/thiqa/internal/accesslog"
	"github.com/thiqa/thiqa/internal/audit"
	"github.com/thiqa/thiqa/internal/auth"
	"github.com/thiqa/thiqa/internal/clientip"
	"github.com/thiqa/thiqa/internal/metrics"
	"github.com/thiqa/thiqa/policies"
)

// shutdownGrace bounds how long in-flight requests may finish on shutdown,
// and then how long the background loops may take to stop.
const shutdownGrace = 30 * time.Second

// runServe serves every service until the process is told to stop
// (SIGTERM, SIGINT). It opens its listeners before anything else, so a
// port in use fails at once, having changed nothing; then it opens the
// token and the store, builds the services and starts their loops. A
// failure at any step stops what was started and returns the error (exit
// code 1). Shutdown lets requests finish for at most shutdownGrace, then
// stops the loops and waits for them for at most shutdownGrace more.
func runServe(ctx context.Context, env *cliEnv, args []string) error {
	fs := newFlags("serve", env)
	dir := fs.String("data", "", "data folder (required)")
	addr := fs.String("addr", "", "listen address (default: the configuration's listen)")
	ready := fs.String("ready-file", "", "write the listening address to this file once serving (for scripts and tests)")
	listRoutes := fs.Bool("list-routes", false, "wire every service as serving would, print the route table (method and path pattern, or raw prefix) and exit without serving")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	cfg, err := loadConfig(*dir)
	if err != nil {
		return err
	}
	if *addr != "" {
		cfg.Listen = *addr
	}
	logger := newLogger(env.stderr, cfg.Log)
	reg := metrics.NewRegistry()
	if err := checkDevelopmentIssuers(cfg, logger, reg); err != nil {
		return err
	}
	warnPublicBaseURL(cfg, *addr, logger)

	// Listeners first: nothing is touched when a port is taken. Listing
	// the routes serves nothing, so it takes any free port.
	if *listRoutes {
		cfg.Listen, cfg.Metrics.Listen = "127.0.0.1:0", ""
	}
	ln, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		return fmt.Errorf("listening on %s: %w (is another thiqa serve running? choose another port with --addr or listen in thiqa.yaml)", cfg.Listen, err)
	}
	defer ln.Close()
	var mln net.Listener
	if cfg.Metrics.Listen != "" {
		if mln, err = net.Listen("tcp", cfg.Metrics.Listen); err != nil {
			return fmt.Errorf("listening on %s (metrics.listen): %w", cfg.Metrics.Listen, err)
		}
		defer mln.Close()
	}

	tok, err := openToken(ctx, cfg, logger, reg)
	if err != nil {
		return err
	}
	defer tok.Close()
	db, err := openStore(ctx, cfg, logger)
	if err != nil {
		return err
	}
	defer db.Close()
	log := newAuditLog(db, logger, reg)
	defer log.Close()
	status := newCertificateStatus(cfg, db)
	delegated, err := cscDelegatedIssuers(ctx, cfg, tok, db)
	if err != nil {
		return err
	}
	authn, err := newAuthenticator(cfg, logger, reg, status, log, delegated)
	if err != nil {
		return err
	}

	p := &platform{cfg: cfg, logger: logger, reg: reg, token: tok, db: db, audit: log, authn: authn, certStatus: status}
	sv := &serving{mux: newRouteMux(), raw: map[string]http.Handler{}, ready: map[string]func(context.Context) error{},
		warnings: map[string]func() string{}}
	defer func() {
		for i := len(sv.closers) - 1; i >= 0; i-- {
			sv.closers[i]()
		}
	}()
	for _, w := range services() {
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("stopped while starting %s: %w", w.name, err)
		}
		if err := w.wire(ctx, p, sv); err != nil {
			return fmt.Errorf("starting %s: %w", w.name, err)
		}
	}
	if *listRoutes {
		return printRoutes(env.stdout, sv)
	}
	httpMetrics, err := metrics.NewHTTP(reg, slices.Collect(maps.Keys(sv.raw))...)
	if err != nil {
		return err
	}
	// One notion of "the client" for every rate limit and log line: the
	// TCP peer, or what a trusted proxy says (verify.trustedProxies).
	proxies, err := clientip.New(cfg.Verify.TrustedProxies)
	if err != nil {
		return fmt.Errorf("verify.trustedProxies: %w", err)
	}
	srv := &http.Server{
		Handler:           proxies.Middleware(accesslog.Handler(logger, httpMetrics.Handler(rawPrefixes(sv.raw, sv.mux)))),
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       2 * time.Minute,
		WriteTimeout:      5 * time.Minute,
		IdleTimeout:       2 * time.Minute,
		ErrorLog:          slog.NewLogLogger(logger.Handler(), slog.LevelWarn),
	}
	tlsOn := cfg.TLS != nil
	if tlsOn {
		tc, err := serverTLS(cfg, authn)
		if err != nil {
			return err
		}
		srv.TLSConfig = tc
	}
	if _, err := log.Append(ctx, audit.Entry{
		Actor: "thiqa-serve", Action: "service.start", Object: ln.Addr().String(), Outcome: "success",
		Details: map[string]any{"version": version, "tls": tlsOn, "store": cfg.Store.Driver, "token": cfg.HSM.TokenLabel},
	}); err != nil {
		return fmt.Errorf("writing audit record: %w", err)
	}

	// The loops start once everything they serve is built; they stop, and
	// are waited for (bounded), whatever way this function returns.
	bgCtx, stopBackground := context.WithCancel(context.Background())
	var bg sync.WaitGroup
	for _, run := range sv.background {
		bg.Go(func() { run(bgCtx) })
	}
	defer func() {
		stopBackground()
		if !waitBounded(&bg, shutdownGrace) {
			logger.Error("background loops did not stop in time; exiting anyway", "waited", shutdownGrace)
		}
	}()
	if mln != nil {
		stopMetrics := serveMetrics(mln, sv.metrics, logger)
		defer stopMetrics()
		logger.Info("serving metrics", "addr", mln.Addr().String())
	}

	served := make(chan error, 1)
	go func() {
		if tlsOn {
			served <- srv.ServeTLS(ln, "", "")
		} else {
			served <- srv.Serve(ln)
		}
	}()
	logger.Info("serving", "addr", ln.Addr().String(), "tls", tlsOn, "trustedProxies", proxies.Proxies())
	if *ready != "" {
		if err := writeReadyFile(*ready, ln.Addr().String()); err != nil {
			sctx, cancel := context.WithTimeout(context.Background(), shutdownGrace)
			defer cancel()
			_ = srv.Shutdown(sctx)
			return err
		}
	}
	select {
	case err := <-served:
		return fmt.Errorf("serving: %w", err)
	case <-ctx.Done():
	}
	logger.Info("shutting down")
	sctx, cancel := context.WithTimeout(context.Background(), shutdownGrace)
	defer cancel()
	shutdownErr := srv.Shutdown(sctx)
	if err := <-served; err != nil && !errors.Is(err, http.ErrServerClosed) {
		logger.Warn("server stopped with an error", "err", err)
	}
	if _, err := log.Append(sctx, audit.Entry{
		Actor: "thiqa-serve", Action: "service.stop", Object: ln.Addr().String(), Outcome: "success",
	}); err != nil {
		logger.Error("writing the stop audit record", "err", err)
	}
	if shutdownErr != nil {
		return fmt.Errorf("graceful shutdown: %w", shutdownErr)
	}
	logger.Info("stopped")
	return nil
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

// warnPublicBaseURL warns when --addr moves the listener away from the
// host and port of publicBaseURL, which certificates (AIA, CRL and OCSP
// URLs) and the OIDC issuer carry: relying parties would not reach this
// server there.
func warnPublicBaseURL(cfg *config.Config, addr string, logger *slog.Logger) {
	if addr == "" {
		return
	}
	u, err := url.Parse(cfg.PublicBaseURL)
	if err != nil {
		return
	}
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return
	}
	wantPort := u.Port()
	if wantPort == "" {
		wantPort = map[string]string{"http": "80", "https": "443"}[u.Scheme]
	}
	if port != wantPort || (host != "" && host != u.Hostname() && !isUnspecified(host)) {
		logger.Warn("--addr differs from the host and port of publicBaseURL, which certificates, OCSP and CRL URLs and the OIDC issuer name: relying parties will look for this server there (set publicBaseURL in thiqa.yaml, or put a proxy in front)",
			"addr", addr, "publicBaseURL", cfg.PublicBaseURL)
	}
}

// isUnspecified reports whether host listens on every interface.
func isUnspecified(host string) bool {
	ip := net.ParseIP(host)
	return ip != nil && ip.IsUnspecified()
}

// wirePlatform serves the platform's own endpoints: health, readiness,
// metrics and the caller's identity.
func wirePlatform(_ context.Context, p *platform, s *serving) error {
	s.mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	})
	s.ready["store"] = p.db.Ping
	s.ready["token"] = p.token.Ping
	s.mux.HandleFunc("GET /readyz", metrics.ReadinessHandler(s.ready, s.warnings))
	if err := metrics.RegisterReadiness(p.reg, s.ready); err != nil {
		return err
	}
	if reg, ok := p.reg.(*prometheus.Registry); ok {
		h := metrics.Handler(reg)
		if role := p.cfg.Metrics.RequireRole; role != "" {
			h = p.authn.RequireRole(policies.ActionReadMetrics, policies.Role(role))(h)
		}
		if p.cfg.Metrics.Listen == "" {
			s.mux.Handle("GET /metrics", h)
		} else {
			s.metrics = h // on its own listener (runServe)
		}
	}
	s.mux.Handle("GET /api/v1/whoami", p.authn.Require(policies.ActionWhoAmI)(http.HandlerFunc(auth.WhoAmI)))
	doc, err := api.Handler(p.cfg.PublicBaseURL)
	if err != nil {
		return err
	}
	s.mux.Handle("GET "+api.Path, doc)
	return nil
}

// checkDevelopmentIssuers refuses to serve a production configuration that
// trusts a development token issuer, warns about one otherwise, and says so
// in the metric thiqa_development_issuer_enabled.
func checkDevelopmentIssuers(cfg *config.Config, logger *slog.Logger, reg prometheus.Registerer) error {
	dev := cfg.DevelopmentIssuers()
	g := prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "thiqa_development_issuer_enabled",
		Help: "1 while a development token issuer (tokens anyone with the data folder can mint with `thiqa token`) is trusted.",
	})
	if len(dev) > 0 {
		g.Set(1)
	}
	if err := reg.Register(g); err != nil {
		return fmt.Errorf("registering metrics: %w", err)
	}
	if len(dev) == 0 {
		return nil
	}
	if cfg.Production {
		return fmt.Errorf("the configuration says production: true but trusts the development token issuer %s: remove it from auth.issuers (and keys.devTokenIssuer) and trust your identity provider instead", strings.Join(dev, ", "))
	}
	logger.Warn("a development token issuer is trusted: anyone who can read the data folder can mint tokens for any role (`thiqa token`); remove it from auth.issuers and set production: true before going live",
		"issuers", dev)
	return nil
}

// serveMetrics serves h at GET /metrics on ln (metrics.listen) and returns
// the function that stops it.
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

// serverTLS returns the TLS configuration: the server certificate from the
// configuration, and client certificates requested (not required) and
// verified against the configured client CAs.
func serverTLS(cfg *config.Config, authn *auth.Authenticator) (*tls.Config, error) {
	cert, err := tls.LoadX509KeyPair(cfg.Resolve(cfg.TLS.CertFile), cfg.Resolve(cfg.TLS.KeyFile))
	if err != nil {
		return nil, fmt.Errorf("loading TLS certificate: %w", err)
	}
	return authn.ServerTLSConfig(&tls.Config{
		Certificates: []tls.Certificate{cert},
		MinVersion:   tls.VersionTLS12,
	}), nil
}

// writeJSON sends v as JSON with the given status.
func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}
