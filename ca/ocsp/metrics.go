package ocsp

import (
	"fmt"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

type outcome int

const (
	outGood outcome = iota
	outRevoked
	outUnknown
	outMalformed
	outUnauthorized
	outInternal
	outTryLater
	nOutcomes
)

var outcomeNames = [nOutcomes]string{"good", "revoked", "unknown", "malformedRequest", "unauthorized", "internalError", "tryLater"}

type sigReason int

const (
	sigPresign sigReason = iota
	sigMiss
	sigNonce
	sigRevoked
	nSigReasons
)

var sigReasonNames = [nSigReasons]string{"presign", "cache_miss", "nonce_or_multi", "revocation"}

// metrics holds resolved counters so the hot path does no label lookups.
type metrics struct {
	cached, signedResp [nOutcomes]prometheus.Counter
	signatures         [nSigReasons]prometheus.Counter
	presign            *prometheus.HistogramVec
	presignNextUpdate  *prometheus.GaugeVec
}

func newMetrics(reg prometheus.Registerer, cache ResponseCache, issuers map[string]*issuer) (*metrics, error) {
	responses := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "thiqa_ocsp_responses_total",
		Help: "OCSP responses by status and by whether they were pre-signed."}, []string{"status", "presigned"})
	sigs := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "thiqa_ocsp_signatures_total",
		Help: "OCSP responses signed, by reason."}, []string{"reason"})
	m := &metrics{presign: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "thiqa_ocsp_presign_seconds",
		Help: "Duration of one pre-signing run over a CA's certificates.", Buckets: prometheus.ExponentialBuckets(0.01, 4, 10)}, []string{"ca"})}
	for i := range nOutcomes {
		m.cached[i] = responses.WithLabelValues(outcomeNames[i], "true")
		m.signedResp[i] = responses.WithLabelValues(outcomeNames[i], "false")
	}
	for i := range nSigReasons {
		m.signatures[i] = sigs.WithLabelValues(sigReasonNames[i])
	}
	size := prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "thiqa_ocsp_cache_entries",
		Help: "Signed OCSP responses held in the response cache."}, func() float64 { return float64(cache.Len()) })
	m.presignNextUpdate = prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "thiqa_ocsp_presign_next_update_seconds",
		Help: "Earliest nextUpdate (Unix time) of the responses signed by the last complete pre-signing run, by CA."}, []string{"ca"})
	collectors := []prometheus.Collector{responses, sigs, m.presign, m.presignNextUpdate, size}
	for name, is := range issuers {
		collectors = append(collectors, prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "thiqa_ocsp_responder_certificate_not_after_seconds",
			Help: "NotAfter (Unix time) of the OCSP responder certificate in use, by CA.", ConstLabels: prometheus.Labels{"ca": name}},
			func() float64 { return float64(is.signing.Load().cert.NotAfter.Unix()) }))
	}
	if ev, ok := cache.(interface{ Evictions() uint64 }); ok {
		collectors = append(collectors, prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "thiqa_ocsp_cache_evictions_total",
			Help: "Signed OCSP responses evicted from the full response cache."}, func() float64 { return float64(ev.Evictions()) }))
	}
	if reg != nil {
		for _, c := range collectors {
			if err := reg.Register(c); err != nil {
				return nil, fmt.Errorf("registering OCSP metrics: %w", err)
			}
		}
	}
	return m, nil
}

func (m *metrics) count(o outcome) { m.signedResp[o].Inc() }

func (m *metrics) countState(s State, cached bool) {
	o := outUnknown
	switch s {
	case Good:
		o = outGood
	case Revoked:
		o = outRevoked
	}
	if cached {
		m.cached[o].Inc()
	} else {
		m.signedResp[o].Inc()
	}
}

func (m *metrics) signed(r sigReason) { m.signatures[r].Inc() }

func (m *metrics) presigned(ca string, d time.Duration) {
	m.presign.WithLabelValues(ca).Observe(d.Seconds())
}

// presignedUntil records the earliest nextUpdate of a complete pre-signing run.
func (m *metrics) presignedUntil(ca string, next time.Time) {
	m.presignNextUpdate.WithLabelValues(ca).Set(float64(next.Unix()))
}
