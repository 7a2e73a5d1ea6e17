package main

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"log/slog"
	"maps"
	"net"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/thiqa/thiqa/api"
	"github.com/thiqa/thiqa/backup"
	"github.com/thiqa/thiqa/cmd/thiqa/internal/config"
	"github.com/thiqa/thiqa/internal/accesslog"
	"github.com/thiqa/thiqa/internal/audit"
	"github.com/thiqa/thiqa/internal/auth"
	"github.com/thiqa/thiqa/internal/clientip"
	"github.com/thiqa/thiqa/internal/metrics"
	"github.com/thiqa/thiqa/internal/serve"
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
	if err := auth.CheckDevelopmentIssuers(cfg.DevelopmentIssuers(), cfg.Production, logger, reg); err != nil {
		return err
	}
	warnPublicBaseURL(cfg, *addr, logger)
	warnCountry(cfg, logger)

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

	// The data folder's shared lock (wireDeployment's, taken here too)
	// before the token and the store are opened: beside a restore or a
	// compaction (their exclusive lock) the store's migrations waited out
	// the busy timeout behind VACUUM and failed with "database is locked".
	unlock, err := backup.LockFolder(cfg.Dir(), false)
	if err != nil {
		return err
	}
	defer unlock()
	p, closeAll, err := openPlatform(ctx, cfg, logger, reg, openToken)
	if err != nil {
		return err
	}
	defer closeAll()
	p.actor = "thiqa-serve"
	p.certStatus = newCertificateStatus(cfg, p.db)
	delegated, err := cscDelegatedIssuers(ctx, cfg, p.token, p.db)
	if err != nil {
		return err
	}
	if p.authn, err = newAuthenticator(cfg, logger, reg, p.certStatus, p.audit, delegated); err != nil {
		return err
	}
	sv := &serving{mux: serve.NewMux(), raw: map[string]http.Handler{}, ready: map[string]func(context.Context) error{},
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
		_, err := fmt.Fprintln(env.stdout, strings.Join(serve.RouteTable(sv.mux, sv.raw), "\n"))
		return err
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
	var tc *tls.Config
	if cfg.TLS != nil {
		if tc, err = serverTLS(cfg, p.authn); err != nil {
			return err
		}
	}
	tlsOn := tc != nil
	if _, err := p.audit.Append(ctx, startRecord(cfg, ln.Addr().String(), tlsOn)); err != nil {
		return fmt.Errorf("writing audit record: %w", err)
	}

	logger.Info("serving", "addr", ln.Addr().String(), "tls", tlsOn, "trustedProxies", proxies.Proxies())
	// The loops start once everything they serve is built; they stop, and
	// are waited for (bounded), whatever way serving ends.
	return serve.Run(ctx, serve.Options{Listener: ln, TLSConfig: tc,
		Handler: proxies.Middleware(accesslog.Handler(logger, httpMetrics.Handler(serve.RawPrefixes(sv.raw, sv.mux)))),
		Metrics: sv.metrics, MetricsListener: mln,
		Background: sv.background, Stopping: sv.stopping, ReadyFile: *ready, Grace: shutdownGrace, Logger: logger,
		Stopped: func(ctx context.Context) {
			if _, err := p.audit.Append(ctx, audit.Entry{
				Actor: "thiqa-serve", Action: "service.stop", Object: ln.Addr().String(), Outcome: "success",
			}); err != nil {
				logger.Error("writing the stop audit record", "err", err)
			}
		}})
}

// startRecord is the service.start audit record of a server listening on
// addr: the version, the store and token, and the SHA-256 of the
// thiqa.yaml it runs with (config), so that the log shows when the
// configuration changed between two starts.
func startRecord(cfg *config.Config, addr string, tlsOn bool) audit.Entry {
	return audit.Entry{
		Actor: "thiqa-serve", Action: "service.start", Object: addr, Outcome: "success",
		Details: map[string]any{"version": version, "tls": tlsOn, "store": cfg.Store.Driver, "token": cfg.HSM.TokenLabel,
			"configSHA256": cfg.SHA256()},
	}
}

// warnCountry warns when thiqa.yaml's country is not the C of the CA
// certificates it should be (countryMismatches): the server starts, and
// accepts the configured country's civil numbers.
func warnCountry(cfg *config.Config, logger *slog.Logger) {
	for _, m := range countryMismatches(cfg) {
		if len(m.Agreeing) > 0 {
			// Editing thiqa.yaml would make the agreeing generations disagree.
			logger.Warn("the country in thiqa.yaml is not the C of one generation of the CA's certificates, but is that of others: the CA's generations disagree (was its country changed before thiqa ca rollover?), and editing thiqa.yaml cannot make them agree; the deployment takes the configured one (the civil numbers it accepts, the country its citizen profiles issue to)",
				"ca", m.CA, "configured", m.Configured, "certificate", m.Path, "certificateC", strings.Join(m.Certified, ","),
				"agreeing", strings.Join(m.Agreeing, ","))
			continue
		}
		logger.Warn("the country in thiqa.yaml is not the C of the CA's certificate: the deployment takes the configured one (the civil numbers it accepts, the country its citizen profiles issue to); make the CA's country in thiqa.yaml the certificate's C",
			"ca", m.CA, "configured", m.Configured, "certificate", m.Path, "certificateC", strings.Join(m.Certified, ","))
	}
}

// warnPublicBaseURL warns when --addr moves the listener away from the
// host and port of publicBaseURL, which certificates (AIA, CRL and OCSP
// URLs) and the OIDC issuer carry: relying parties would not reach this
// server there.
func warnPublicBaseURL(cfg *config.Config, addr string, logger *slog.Logger) {
	if addr != "" && serve.ElsewhereThan(addr, cfg.PublicBaseURL) {
		logger.Warn("--addr differs from the host and port of publicBaseURL, which certificates, OCSP and CRL URLs and the OIDC issuer name: relying parties will look for this server there (set publicBaseURL in thiqa.yaml, or put a proxy in front)",
			"addr", addr, "publicBaseURL", cfg.PublicBaseURL)
	}
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
	if err := metrics.RegisterReadinessWarnings(p.reg, s.warnings); err != nil {
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
			s.metrics = h // on its own listener (serve.Run)
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
