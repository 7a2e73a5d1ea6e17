package notify

import (
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
)

// Values of the reason label of thiqa_notify_failures_total.
const (
	failRefused     = "refused"
	failUnavailable = "unavailable"
)

// metrics are the notifier's.
type metrics struct {
	delivered *prometheus.CounterVec
	failures  *prometheus.CounterVec
	lag       prometheus.Gauge
	// secretErrors counts the changes of the secret file found unusable.
	secretErrors prometheus.Counter
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		delivered: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "thiqa", Subsystem: "notify", Name: "delivered_total",
			Help: "Notifications the citizens' notification gateway accepted, by event.",
		}, []string{"event"}),
		failures: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "thiqa", Subsystem: "notify", Name: "failures_total",
			Help: "Failed deliveries by reason: refused (a 4xx, the notification skipped) or unavailable (retried).",
		}, []string{"reason"}),
		lag: prometheus.NewGauge(prometheus.GaugeOpts{
			Namespace: "thiqa", Subsystem: "notify", Name: "lag_records",
			Help: "Audit records not yet dealt with by the notifier: the head's seq less the cursor (on the node holding the lease; 0 on the others).",
		}),
		secretErrors: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: "thiqa", Subsystem: "notify", Name: "secret_errors_total",
			Help: "Changes of notify.webhook.secretFile found unusable (missing, readable by others, too short): the last good key still signs, until the file is fixed.",
		}),
	}
	for _, r := range []string{failRefused, failUnavailable} {
		m.failures.WithLabelValues(r) // exported at zero: the first failure is an increase
	}
	if reg == nil {
		return m, nil
	}
	for _, c := range []prometheus.Collector{m.delivered, m.failures, m.lag, m.secretErrors} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("notify: registering metrics: %w", err)
		}
	}
	return m, nil
}
