package hsm

import (
	"errors"

	"github.com/prometheus/client_golang/prometheus"
)

// Result labels of thiqa_hsm_signatures_total.
const (
	resultOK           = "ok"
	resultError        = "error"
	resultVerifyFailed = "verify_failed"
)

// metrics holds the collectors of one Token. A nil *metrics records nothing.
type metrics struct {
	signatures *prometheus.CounterVec
	duration   *prometheus.HistogramVec
	inUse      prometheus.Gauge
	waits      prometheus.Counter
	recoveries *prometheus.CounterVec
	// timeouts counts calls abandoned at their deadline; outstanding are
	// those of them still running (timeout.go).
	timeouts    prometheus.Counter
	outstanding prometheus.Gauge
	// tokenFull counts key generations the token could not store
	// (tokenfull.go).
	tokenFull prometheus.Counter
}

// newMetrics registers the HSM collectors on reg. A nil reg disables metrics.
// Collectors already registered by another Token on the same registry are
// shared, so several tokens can report into one registry.
func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	if reg == nil {
		return nil, nil
	}
	m := &metrics{
		signatures: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "thiqa_hsm_signatures_total",
			Help: "Signatures made with HSM keys, by key label and result (ok, error, verify_failed).",
		}, []string{"key", "result"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "thiqa_hsm_sign_duration_seconds",
			Help:    "Time to sign with an HSM key, including waiting for a session.",
			Buckets: []float64{50e-6, 100e-6, 250e-6, 500e-6, 1e-3, 2.5e-3, 5e-3, 10e-3, 25e-3, 50e-3, 100e-3, 250e-3, 1},
		}, []string{"key"}),
		inUse: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "thiqa_hsm_pool_sessions_in_use",
			Help: "PKCS#11 sessions currently lent out by the session pool.",
		}),
		waits: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "thiqa_hsm_pool_waits_total",
			Help: "Times an operation had to wait because every pooled session was in use.",
		}),
		recoveries: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "thiqa_hsm_recoveries_total",
			Help: "Recoveries from token faults (sessions re-opened, login and key handles restored), by reason.",
		}, []string{"reason"}),
		timeouts: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "thiqa_hsm_call_timeouts_total",
			Help: "Operations whose deadline (the caller's or hsm.callTimeout) passed while the token had not answered; the caller got a 'try again later' error.",
		}),
		outstanding: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "thiqa_hsm_calls_outstanding",
			Help: "PKCS#11 calls whose caller gave up and that the token has not answered yet; each holds a pooled session.",
		}),
		tokenFull: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "thiqa_hsm_token_full_total",
			Help: "Key generations refused because the token cannot store a new object (a SoftHSM token folder's disk full or read-only, an HSM's object memory used up); the caller got a 'try again later' error.",
		}),
	}
	var err error
	if m.signatures, err = register(reg, m.signatures); err != nil {
		return nil, err
	}
	if m.duration, err = register(reg, m.duration); err != nil {
		return nil, err
	}
	if m.inUse, err = register(reg, m.inUse); err != nil {
		return nil, err
	}
	if m.waits, err = register(reg, m.waits); err != nil {
		return nil, err
	}
	if m.recoveries, err = register(reg, m.recoveries); err != nil {
		return nil, err
	}
	if m.timeouts, err = register(reg, m.timeouts); err != nil {
		return nil, err
	}
	if m.outstanding, err = register(reg, m.outstanding); err != nil {
		return nil, err
	}
	if m.tokenFull, err = register(reg, m.tokenFull); err != nil {
		return nil, err
	}
	// Every reason is exported from the start: the first recovery is then
	// an increase an alert rule sees, not a new series.
	for _, r := range []string{reasonSession, reasonNotLoggedIn, reasonNotInitialized, reasonTokenRemoved, reasonHandleInvalid, reasonOpActive} {
		m.recoveries.WithLabelValues(r)
	}
	return m, nil
}

// register registers c, or returns the equal collector already registered.
func register[C prometheus.Collector](reg prometheus.Registerer, c C) (C, error) {
	if err := reg.Register(c); err != nil {
		var are prometheus.AlreadyRegisteredError
		if errors.As(err, &are) {
			if existing, ok := are.ExistingCollector.(C); ok {
				return existing, nil
			}
		}
		return c, err
	}
	return c, nil
}

// signerMetrics are the per-key children, resolved once per Signer so the
// signing path does no label lookups.
type signerMetrics struct {
	ok, failed, verifyFailed prometheus.Counter
	duration                 prometheus.Observer
}

func (m *metrics) forKey(label string) *signerMetrics {
	if m == nil {
		return nil
	}
	return &signerMetrics{
		ok:           m.signatures.WithLabelValues(label, resultOK),
		failed:       m.signatures.WithLabelValues(label, resultError),
		verifyFailed: m.signatures.WithLabelValues(label, resultVerifyFailed),
		duration:     m.duration.WithLabelValues(label),
	}
}

func (m *metrics) recovered(reason string) {
	if m != nil {
		m.recoveries.WithLabelValues(reason).Inc()
	}
}
