package cmp

import "github.com/prometheus/client_golang/prometheus"

// initialBodies are the body types whose outcomes accepted and
// systemUnavail are exported from the start: the requests that enrol
// (ir, cr, p10cr), renew (kur) and revoke (rr).
var initialBodies = []string{"ir", "cr", "p10cr", "kur", "rr"}

// newRequestsMetric returns thiqa_cmp_requests_total{body, outcome}, with
// the accepted and systemUnavail series of initialBodies at zero, so that
// the share of requests answered "try later" has its series before the
// first request (the alert ThiqaCMPUnavailable).
func newRequestsMetric() *prometheus.CounterVec {
	c := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "thiqa_cmp_requests_total", Help: "CMP requests by body type and outcome (the failInfo of a refusal).",
	}, []string{"body", "outcome"})
	for _, body := range initialBodies {
		c.WithLabelValues(body, "accepted")
		c.WithLabelValues(body, SystemUnavail.String())
	}
	return c
}
