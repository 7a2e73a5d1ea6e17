package timestamp

import (
	"fmt"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/thiqa/thiqa/timestamp/tsp"
)

// failInfoHTTP is the fail_info of thiqa_tsa_rejections_total that counts
// the HTTP refusals (wrong method or media type, too large, unreadable).
const failInfoHTTP = "http"

// metrics are the TSA's Prometheus series.
type metrics struct {
	tokens     prometheus.Counter
	rejections *prometheus.CounterVec
	// rejectedHTTP counts the HTTP refusals (fail_info "http"): requests
	// the TSA cannot read, answered with a problem body.
	rejectedHTTP prometheus.Counter
	granted      prometheus.Observer
	rejected     prometheus.Observer
}

func newMetrics(reg prometheus.Registerer, a *Authority) (*metrics, error) {
	m := &metrics{
		tokens: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "thiqa_tsa_tokens_total", Help: "Time-stamp tokens issued.",
		}),
		rejections: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "thiqa_tsa_rejections_total", Help: "Time-stamp requests rejected, by RFC 3161 failInfo (http: not readable as one, answered with an HTTP error).",
		}, []string{"fail_info"}),
	}
	m.rejectedHTTP = m.rejections.WithLabelValues(failInfoHTTP)
	latency := prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "thiqa_tsa_request_duration_seconds",
		Help:    "Time to answer a time-stamp request (parse, checks, record, sign), by outcome.",
		Buckets: []float64{.0001, .00025, .0005, .001, .0025, .005, .0075, .01, .015, .025, .05, .1, .25, 1},
	}, []string{"status"})
	m.granted = latency.WithLabelValues("granted")
	m.rejected = latency.WithLabelValues("rejection")
	offset := prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "thiqa_tsa_clock_offset_seconds", Help: "Clock error bound found by the last clock check.",
	}, func() float64 {
		if st := a.lastClock.Load(); st != nil {
			return st.Offset.Seconds()
		}
		return 0
	})
	inSync := prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "thiqa_tsa_clock_in_sync", Help: "1 when the last clock check found the clock within the declared accuracy.",
	}, func() float64 {
		if st := a.lastClock.Load(); st != nil && st.InSync {
			return 1
		}
		return 0
	})
	checked := prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "thiqa_tsa_clock_last_check_seconds", Help: "When the last clock check ran (Unix time); 0 before the first.",
	}, func() float64 {
		if st := a.lastClock.Load(); st != nil && !st.CheckedAt.IsZero() {
			return float64(st.CheckedAt.Unix())
		}
		return 0
	})
	notAfter := prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "thiqa_tsa_unit_certificate_not_after_seconds", Help: "NotAfter of the TSA unit certificate (Unix time).",
	}, func() float64 { return float64(a.cert.NotAfter.Unix()) })
	issuerRevoked := prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "thiqa_tsa_unit_issuer_revoked",
		Help: "1 while the root CRL this node has read revokes the issuing CA of the TSA unit in use (it time-stamps nothing), else 0.",
	}, func() float64 {
		if a.issuers != nil && a.issuers.RevokedIssuerOf(a.cert) != nil {
			return 1
		}
		return 0
	})
	if reg != nil {
		for _, c := range []prometheus.Collector{m.tokens, m.rejections, latency, offset, inSync, checked, notAfter, issuerRevoked, a.budget.unrecorded} {
			if err := reg.Register(c); err != nil {
				return nil, fmt.Errorf("timestamp: registering metrics: %w", err)
			}
		}
	}
	return m, nil
}

func (m *metrics) observe(st tsp.StatusInfo, d time.Duration) {
	if st.Status == tsp.StatusGranted {
		m.tokens.Inc()
		m.granted.Observe(d.Seconds())
		return
	}
	m.rejections.WithLabelValues(st.FailInfo.String()).Inc()
	m.rejected.Observe(d.Seconds())
}
