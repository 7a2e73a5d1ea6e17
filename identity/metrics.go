package identity

import (
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
)

// metrics counts logins and token-endpoint outcomes.
type metrics struct {
	logins   *prometheus.CounterVec
	tokens   *prometheus.CounterVec
	duration *prometheus.HistogramVec
	limited  *prometheus.CounterVec
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		logins: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "thiqa", Subsystem: "oidc", Name: "logins_total",
			Help: "Citizen logins by method (mtls, mobile) and outcome (success, refused, error).",
		}, []string{"method", "outcome"}),
		tokens: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "thiqa", Subsystem: "oidc", Name: "token_requests_total",
			Help: "Token endpoint requests by outcome (success or the OAuth error code).",
		}, []string{"outcome"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: "thiqa", Subsystem: "oidc", Name: "login_step_seconds",
			Help:    "Time spent in a login step (mtls, approve, token).",
			Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5},
		}, []string{"step"}),
		limited: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "thiqa", Subsystem: "oidc", Name: "rate_limited_total",
			Help: "Requests over the per-client-IP rate limits, by limit (login: mobile login starts and token: token endpoints, refused with 429; userinfo: refused userinfo requests past the address's budget of recorded refusals, answered 401 and not recorded; userinfo_overall: the others past the service's overall budget of recorded refusals; each refusal is counted once).",
		}, []string{"limit"}),
	}
	for _, l := range []string{limitLogin, limitToken, limitUserinfo, limitUserinfoOverall} {
		m.limited.WithLabelValues(l) // exported at zero: the first refusals are an increase
	}
	if reg == nil {
		return m, nil
	}
	for _, c := range []prometheus.Collector{m.logins, m.tokens, m.duration, m.limited} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("identity: registering metrics: %w", err)
		}
	}
	return m, nil
}

// The limit label values of thiqa_oidc_rate_limited_total.
const (
	limitLogin = "login"
	limitToken = "token"
	// limitUserinfo bounds the recorded userinfo refusals of an address,
	// at the token endpoints' rate (userinfoRecorded).
	limitUserinfo = "userinfo"
	// limitUserinfoOverall bounds the recorded userinfo refusals of all
	// addresses together (userinfoRecorded).
	limitUserinfoOverall = "userinfo_overall"
)
