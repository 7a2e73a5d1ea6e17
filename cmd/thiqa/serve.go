package main

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/thiqa/thiqa/internal/audit"
	"github.com/thiqa/thiqa/internal/auth"
	"github.com/thiqa/thiqa/internal/clientip"
	"github.com/thiqa/thiqa/internal/config"
	"github.com/thiqa/thiqa/internal/metrics"
	"github.com/thiqa/thiqa/internal/problem"
	"github.com/thiqa/thiqa/policies"
)

// shutdownGrace bounds how long in-flight requests may finish on shutdown.
const shutdownGrace = 30 * time.Second

// runServe serves every service until the process is told to stop.
func runServe(ctx context.Context, env *cliEnv, args []string) error {
	fs := newFlags("serve", env)
	dir := fs.String("data", "", "data folder (required)")
	addr := fs.String("addr", "", "listen address (default: the configuration's listen)")
	ready := fs.String("ready-file", "", "write the listening address to this file once serving (for scripts and tests)")
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
	authn, err := newAuthenticator(cfg, logger, reg)
	if err != nil {
		return err
	}

	p := &platform{cfg: cfg, logger: logger, reg: reg, token: tok, db: db, audit: log, authn: authn}
	sv := &serving{mux: http.NewServeMux(), raw: map[string]http.Handler{}, ready: map[string]func(context.Context) error{}}
	defer func() {
		for i := len(sv.closers) - 1; i >= 0; i-- {
			sv.closers[i]()
		}
	}()
	for _, w := range services() {
		if err := w.wire(ctx, p, sv); err != nil {
			return fmt.Errorf("starting %s: %w", w.name, err)
		}
	}
	bgCtx, stopBackground := context.WithCancel(context.Background())
	defer stopBackground()
	var bg sync.WaitGroup
	for _, run := range sv.background {
		bg.Add(1)
		go func() {
			defer bg.Done()
			run(bgCtx)
		}()
	}
	defer bg.Wait()

	ln, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		return fmt.Errorf("listening on %s: %w", cfg.Listen, err)
	}
	// One notion of "the client" for every rate limit and log line: the
	// TCP peer, or what a trusted proxy says (verify.trustedProxies).
	proxies, err := clientip.New(cfg.Verify.TrustedProxies)
	if err != nil {
		return fmt.Errorf("verify.trustedProxies: %w", err)
	}
	srv := &http.Server{
		Handler:           proxies.Middleware(accessLog(logger, rawPrefixes(sv.raw, sv.mux))),
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
		ln.Close()
		return fmt.Errorf("writing audit record: %w", err)
	}
	logger.Info("serving", "addr", ln.Addr().String(), "tls", tlsOn, "trustedProxies", proxies.Proxies())
	if *ready != "" {
		if err := writeReadyFile(*ready, ln.Addr().String()); err != nil {
			ln.Close()
			return err
		}
	}

	served := make(chan error, 1)
	go func() {
		if tlsOn {
			served <- srv.ServeTLS(ln, "", "")
		} else {
			served <- srv.Serve(ln)
		}
	}()
	select {
	case err := <-served:
		return fmt.Errorf("serving: %w", err)
	case <-ctx.Done():
	}
	logger.Info("shutting down")
	sctx, cancel := context.WithTimeout(context.Background(), shutdownGrace)
	defer cancel()
	shutdownErr := srv.Shutdown(sctx)
	stopBackground()
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

// wirePlatform serves the platform's own endpoints: health, readiness,
// metrics and the caller's identity.
func wirePlatform(_ context.Context, p *platform, s *serving) error {
	s.mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	})
	s.ready["store"] = p.db.Ping
	s.ready["token"] = p.token.Ping
	s.mux.HandleFunc("GET /readyz", readiness(s.ready))
	if reg, ok := p.reg.(*prometheus.Registry); ok {
		s.mux.Handle("GET /metrics", metrics.Handler(reg))
	}
	s.mux.Handle("GET /api/v1/whoami", p.authn.Require(policies.ActionWhoAmI)(http.HandlerFunc(whoAmI)))
	return nil
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

// readiness reports whether every dependency answers within a short time.
func readiness(checks map[string]func(context.Context) error) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeout(r.Context(), 3*time.Second)
		defer cancel()
		status := http.StatusOK
		result := map[string]string{}
		for name, check := range checks {
			if err := check(ctx); err != nil {
				status = http.StatusServiceUnavailable
				result[name] = oneLine(err.Error())
				continue
			}
			result[name] = "ok"
		}
		writeJSON(w, status, result)
	}
}

// whoAmI shows the authenticated caller: a protected endpoint that lets a
// client check its credentials.
func whoAmI(w http.ResponseWriter, r *http.Request) {
	p, ok := auth.FromContext(r.Context())
	if !ok {
		problem.Error(w, http.StatusUnauthorized, "no authenticated caller")
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{
		"subject":                p.Subject,
		"roles":                  p.Roles,
		"method":                 p.Method,
		"issuer":                 p.Issuer,
		"organizationIdentifier": p.OrganizationIdentifier,
		"civilNumber":            p.CivilNumber,
	})
}

// writeJSON sends v as JSON with the given status.
func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}
