package auth

import (
	"errors"
	"fmt"
	"log/slog"
	"net/http"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/thiqa/thiqa/internal/problem"
	"github.com/thiqa/thiqa/policies"
)

// Outcomes counted by thiqa_auth_requests_total.
const (
	outcomeAllowed   = "allowed"
	outcomeForbidden = "forbidden"
	outcomeInvalid   = "invalid"
	outcomeMissing   = "missing"
)

type metrics struct {
	requests       *prometheus.CounterVec
	jwks           *prometheus.CounterVec
	tokenCacheHits prometheus.Counter
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "thiqa_auth_requests_total",
			Help: "Requests through auth.Require by authentication method (jwt, mtls, none) and outcome (allowed, forbidden, invalid, missing).",
		}, []string{"method", "outcome"}),
		jwks: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "thiqa_auth_jwks_fetches_total",
			Help: "Downloads of issuers' JWKS URLs by issuer and outcome (ok, error).",
		}, []string{"issuer", "outcome"}),
		tokenCacheHits: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "thiqa_auth_token_cache_hits_total",
			Help: "Bearer tokens accepted without a second signature verification because the same token verified before.",
		}),
	}
	if reg != nil {
		for _, c := range []prometheus.Collector{m.requests, m.jwks, m.tokenCacheHits} {
			if err := reg.Register(c); err != nil {
				return nil, fmt.Errorf("auth: registering metrics: %w", err)
			}
		}
	}
	return m, nil
}

func (m *metrics) jwksFetched(issuer string) func(ok bool) {
	return func(ok bool) {
		outcome := "ok"
		if !ok {
			outcome = "error"
		}
		m.jwks.WithLabelValues(issuer, outcome).Inc()
	}
}

// Require returns middleware that lets a request through only when its
// caller authenticates and policies.Allowed grants one of the caller's roles
// the action. The principal is stored in the request context (FromContext).
// Refusals are RFC 9457 problems: 401 with a Bearer challenge when the caller
// is not authenticated, 403 naming the action when it is not permitted.
func (a *Authenticator) Require(action policies.Action) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			p, method, err := a.authenticate(r)
			if err != nil {
				a.unauthorized(w, r, action, method, err)
				return
			}
			if !policies.Allowed(action, p.Roles) {
				a.metrics.requests.WithLabelValues(method, outcomeForbidden).Inc()
				a.log.LogAttrs(r.Context(), slog.LevelWarn, "request forbidden",
					slog.String("subject", p.Subject), slog.String("method", method),
					slog.Any("roles", p.Roles), slog.String("action", string(action)),
					slog.String("path", r.URL.Path), slog.String("remote", r.RemoteAddr))
				problem.Write(w, problem.Details{
					Status:   http.StatusForbidden,
					Detail:   fmt.Sprintf("the caller's roles do not grant the permission %q", action),
					Instance: r.URL.Path,
				})
				return
			}
			a.metrics.requests.WithLabelValues(method, outcomeAllowed).Inc()
			next.ServeHTTP(w, r.WithContext(WithPrincipal(r.Context(), p)))
		})
	}
}

func (a *Authenticator) unauthorized(w http.ResponseWriter, r *http.Request, action policies.Action, method string, err error) {
	outcome, detail := outcomeMissing, "authentication required: present a bearer token or a client certificate"
	challenge := `Bearer realm="thiqa"`
	if errors.Is(err, ErrInvalidCredentials) {
		outcome = outcomeInvalid
		detail = "invalid credentials: " + reasonOf(err)
		if method == MethodJWT {
			challenge = `Bearer realm="thiqa", error="invalid_token"`
		}
	}
	a.metrics.requests.WithLabelValues(method, outcome).Inc()
	a.log.LogAttrs(r.Context(), slog.LevelWarn, "request not authenticated",
		slog.String("method", method), slog.String("reason", reasonOf(err)),
		slog.String("action", string(action)), slog.String("path", r.URL.Path),
		slog.String("remote", r.RemoteAddr))
	w.Header().Set("WWW-Authenticate", challenge)
	problem.Write(w, problem.Details{Status: http.StatusUnauthorized, Detail: detail, Instance: r.URL.Path})
}
