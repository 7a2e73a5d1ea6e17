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

// followUpStates are the states whose follow-up may fail for good: a
// rejection (rejecting), the confirmation of a key update (confirming),
// a certificate never confirmed (expiring).
var followUpStates = []string{"rejecting", "confirming", "expiring"}

// newFollowUpFailedMetric returns thiqa_cmp_followup_failed_total{state},
// the transactions whose follow-up failed for good (giveUp), by the state
// they were left in, each at zero from the start: the alert
// ThiqaCMPFollowUpFailed fires on the first.
func newFollowUpFailedMetric() *prometheus.CounterVec {
	c := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "thiqa_cmp_followup_failed_total",
		Help: "CMP transactions whose follow-up (revoking a rejected or unconfirmed certificate, superseding the one a confirmed key update replaced) failed for good and is no longer retried, by the state they were in.",
	}, []string{"state"})
	for _, st := range followUpStates {
		c.WithLabelValues(st)
	}
	return c
}
