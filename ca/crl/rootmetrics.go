package crl

import (
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
)

// RegisterRootMetrics registers on reg where the root CA key is
// (thiqa_root_key_online: 1 on the online token, development only; 0
// offline) and the nextUpdate of the root CRL served
// (thiqa_root_crl_next_update_seconds, read from nextUpdate: 0 while there
// is none).
func RegisterRootMetrics(reg prometheus.Registerer, keyOnline bool, nextUpdate func() float64) error {
	online := prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "thiqa_root_key_online",
		Help: "1 while the root CA key is on the online token (development only), 0 when the root is offline.",
	})
	if keyOnline {
		online.Set(1)
	}
	for _, c := range []prometheus.Collector{online, prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "thiqa_root_crl_next_update_seconds",
		Help: "nextUpdate (Unix time) of the root CRL served at /crl/root.crl; 0 while there is none.",
	}, nextUpdate)} {
		if err := reg.Register(c); err != nil {
			return fmt.Errorf("registering metrics: %w", err)
		}
	}
	return nil
}
