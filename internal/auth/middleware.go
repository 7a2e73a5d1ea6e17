package auth

import (
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"slices"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/thiqa/thiqa/internal/audit"
	"github.com/thiqa/thiqa/internal/problem"
	"github.com/thiqa/thiqa/policies"
)

// Outcomes counted by thiqa_auth_requests_total.
const (
	outcomeAllowed   = "allowed"
	outcomeForbidden = "forbidden"
	outcomeInvalid   = "invalid"
	outcomeMissing   = "missing"
	// outcomeUnavailable: the credentials could not be checked now.
	outcomeUnavailable = "unavailable"
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
			Help: "Requests through auth.Require by authentication method (jwt, mtls, none) and outcome (allowed, forbidden, invalid, missing, unavailable).",
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
// is not authenticated, 403 naming the action when it is not permitted, 503
// when the credentials cannot be checked now. Each refusal of an
// authenticated caller (403), and of credentials that verified but are
// refused (Identified), leaves exactly one audit record (Options.Audit)
// before the answer is written: the caller (method, subject, roles), or
// the client certificate presented, and the reason. The refusals of
// callers who did not authenticate (the peer address of an anonymous
// caller, forged credentials) are recorded within the budgets of
// refusalbound.go. When a due record cannot be written the answer is 500
// and says so.
func (a *Authenticator) Require(action policies.Action) func(http.Handler) http.Handler {
	return a.require(action, func(held []policies.Role) bool { return policies.Allowed(action, held) })
}

// RequireRole is Require for an action that the configuration grants to
// one role rather than policies (e.g. metrics.requireRole).
func (a *Authenticator) RequireRole(action policies.Action, role policies.Role) func(http.Handler) http.Handler {
	return a.require(action, func(held []policies.Role) bool { return slices.Contains(held, role) })
}

func (a *Authenticator) require(action policies.Action, allowed func([]policies.Role) bool) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			p, at, err := a.authenticate(r)
			if err != nil {
				a.unauthorized(w, r, action, at, err)
				return
			}
			if !allowed(p.Roles) || !p.delegationAllows(action) {
				a.metrics.requests.WithLabelValues(at.method, outcomeForbidden).Inc()
				a.log.LogAttrs(r.Context(), slog.LevelWarn, "request forbidden",
					slog.String("subject", p.Subject), slog.String("method", at.method),
					slog.Any("roles", p.Roles), slog.String("action", string(action)),
					slog.String("path", r.URL.Path), slog.String("remote", r.RemoteAddr))
				detail := fmt.Sprintf("the caller's roles do not grant the permission %q", action)
				reason := "role not allowed"
				switch {
				case allowed(p.Roles):
					detail = fmt.Sprintf("a delegated access token (scope %q) does not grant the permission %q", p.Grant.Scope, action)
					reason = "delegated access token not valid for this action"
				case p.otherCountry:
					detail = fmt.Sprintf("the client certificate's national identity number %s is not of this deployment's country: it names none of its citizens", p.Subject)
					reason = "national identity number of another country"
				}
				if !a.record(w, r, audit.Entry{Actor: p.Subject, Action: string(action), Object: r.URL.Path, Outcome: audit.OutcomeRefused,
					Details: refusal{Status: http.StatusForbidden, Reason: reason, Caller: p.Caller(), Remote: r.RemoteAddr}}) {
					return
				}
				problem.Write(w, problem.Details{Status: http.StatusForbidden, Detail: detail, Instance: r.URL.Path})
				return
			}
			a.metrics.requests.WithLabelValues(at.method, outcomeAllowed).Inc()
			next.ServeHTTP(w, r.WithContext(WithPrincipal(r.Context(), p)))
		})
	}
}

// Actors of the audit records of refused callers who did not authenticate.
const (
	// ActorAnonymous presented no credentials.
	ActorAnonymous = "anonymous"
	// ActorUnauthenticated presented credentials that were refused (or
	// could not be checked).
	ActorUnauthenticated = "unauthenticated"
)

// ProblemCredentialsExpired is the problem type of a 401 for a bearer token
// past its expiry or a client certificate outside its validity: a client
// may tell it from other refusals without reading the detail (the CSC API
// answers it as expired_token).
const ProblemCredentialsExpired = "urn:thiqa:problem:credentials-expired"

// refusal is the details of the audit record of a refusal by Require.
type refusal struct {
	Status      int             `json:"status"`
	Reason      string          `json:"reason"`
	Caller      *Caller         `json:"caller,omitempty"`
	Method      string          `json:"method,omitempty"`
	Certificate *CertificateRef `json:"certificate,omitempty"`
	Remote      string          `json:"remote"`
	// Note and UnrecordedOverall are set past the budgets of refusals of
	// callers who did not authenticate (refusalbound.go).
	Note              string `json:"note,omitempty"`
	UnrecordedOverall int64  `json:"unrecordedOverall,omitempty"`
}

// CertificateRef names a certificate in audit records: its issuer's DN
// and its serial number in hex.
type CertificateRef struct {
	Issuer string `json:"issuer"`
	Serial string `json:"serial"`
}

// RefOf names c; nil for nil.
func RefOf(c *x509.Certificate) *CertificateRef {
	if c == nil {
		return nil
	}
	return &CertificateRef{Issuer: c.Issuer.String(), Serial: hex.EncodeToString(c.SerialNumber.Bytes())}
}

// record writes the audit record of a refusal; when it cannot, it answers
// 500 itself and returns false.
func (a *Authenticator) record(w http.ResponseWriter, r *http.Request, e audit.Entry) bool {
	if a.audit == nil {
		return true
	}
	if _, err := a.audit.Append(r.Context(), e); err != nil {
		a.log.ErrorContext(r.Context(), "audit append failed", "action", e.Action, "err", err)
		problem.Write(w, problem.Details{Status: http.StatusInternalServerError, Detail: "the refusal could not be recorded in the audit log", Instance: r.URL.Path})
		return false
	}
	return true
}

func (a *Authenticator) unauthorized(w http.ResponseWriter, r *http.Request, action policies.Action, at attempt, err error) {
	status, outcome, actor := http.StatusUnauthorized, outcomeMissing, ActorAnonymous
	detail := "authentication required: present a bearer token or a client certificate"
	reason := "no credentials"
	challenge := `Bearer realm="thiqa"`
	problemType := ""
	switch {
	case errors.Is(err, ErrInvalidCredentials):
		outcome, actor = outcomeInvalid, ActorUnauthenticated
		reason = reasonOf(err)
		detail = "invalid credentials: " + reason
		if errors.Is(err, ErrTokenExpired) || errors.Is(err, ErrCertificateExpired) {
			problemType = ProblemCredentialsExpired
		}
		if at.method == MethodJWT {
			challenge = `Bearer realm="thiqa", error="invalid_token"`
		}
	case errors.Is(err, ErrUnavailable):
		status, outcome, actor = http.StatusServiceUnavailable, outcomeUnavailable, ActorUnauthenticated
		reason = err.Error()
		detail = "the credentials cannot be checked now; try again later"
		challenge = ""
	}
	a.metrics.requests.WithLabelValues(at.method, outcome).Inc()
	a.log.LogAttrs(r.Context(), slog.LevelWarn, "request not authenticated",
		slog.String("method", at.method), slog.String("reason", reason),
		slog.String("action", string(action)), slog.String("path", r.URL.Path),
		slog.String("remote", r.RemoteAddr))
	d := refusal{Status: status, Reason: reason, Remote: r.RemoteAddr, Certificate: RefOf(at.cert)}
	if at.method != "none" {
		d.Method = at.method
	}
	if !a.recordUnauthenticated(w, r, audit.Entry{Actor: actor, Action: string(action), Object: r.URL.Path, Outcome: audit.OutcomeRefused}, d, Identified(err)) {
		return
	}
	if challenge != "" {
		w.Header().Set("WWW-Authenticate", challenge)
	}
	problem.Write(w, problem.Details{Type: problemType, Status: status, Detail: detail, Instance: r.URL.Path})
}
