package audit

import (
	"crypto/sha256"
	"errors"

	"github.com/prometheus/client_golang/prometheus"
)

// metrics are the Log's Prometheus collectors.
type metrics struct {
	recordsTotal *prometheus.CounterVec
	failures     prometheus.Counter
	batch        prometheus.Histogram
	latency      prometheus.Histogram
	items        prometheus.Counter
}

func newMetrics(reg prometheus.Registerer) metrics {
	return metrics{
		recordsTotal: register(reg, prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "thiqa_audit_records_total",
			Help: "Audit records committed, by outcome.",
		}, []string{"outcome"})),
		failures: register(reg, prometheus.NewCounter(prometheus.CounterOpts{
			Name: "thiqa_audit_append_failures_total",
			Help: "Audit appends that failed because their batch could not be committed, and changes rolled back because their records could not be written or committed in their transaction.",
		})),
		batch: register(reg, prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "thiqa_audit_batch_size",
			Help:    "Records written per audit transaction (group commit).",
			Buckets: prometheus.ExponentialBuckets(1, 2, 10), // 1 … 512
		})),
		items: register(reg, prometheus.NewCounter(prometheus.CounterOpts{
			Name: "thiqa_audit_items_total",
			Help: "Items committed inside collective audit records (Group.Append).",
		})),
		latency: register(reg, prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "thiqa_audit_append_duration_seconds",
			Help:    "Time from Append to the record being committed.",
			Buckets: prometheus.ExponentialBuckets(0.0001, 2, 16), // 100 µs … 3.3 s
		})),
	}
}

// records returns the counter for an outcome; outcomes other than the
// known ones share the label "other", so callers cannot grow the series.
func (m metrics) records(outcome string) prometheus.Counter {
	switch outcome {
	case OutcomeSuccess, OutcomeFailure, OutcomeRefused:
	default:
		outcome = "other"
	}
	return m.recordsTotal.WithLabelValues(outcome)
}

// register registers c on reg, or returns the collector already registered
// under the same description.
func register[C prometheus.Collector](reg prometheus.Registerer, c C) C {
	if reg == nil {
		return c
	}
	if err := reg.Register(c); err != nil {
		var are prometheus.AlreadyRegisteredError
		if errors.As(err, &are) {
			if existing, ok := are.ExistingCollector.(C); ok {
				return existing
			}
		}
	}
	return c
}

func sum256(b []byte) []byte {
	s := sha256.Sum256(b)
	return s[:]
}
