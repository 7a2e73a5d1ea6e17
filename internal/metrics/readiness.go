package metrics

import (
	"context"
	"fmt"
	"sort"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// readinessTimeout bounds all the checks of one scrape together.
const readinessTimeout = 3 * time.Second

// readiness is a collector that runs the readiness checks at every scrape.
type readiness struct {
	desc   *prometheus.Desc
	checks map[string]func(context.Context) error
}

// RegisterReadiness registers thiqa_ready{check}: 1 when the check passed
// when Prometheus scraped, 0 when it failed or did not answer in time. The
// checks are those of GET /readyz; the map is read at every scrape, so
// checks added to it after registration (while the services are wired, all
// before serving starts) are reported too. The map must not change once
// the server serves.
func RegisterReadiness(reg prometheus.Registerer, checks map[string]func(context.Context) error) error {
	if reg == nil {
		return nil
	}
	c := &readiness{
		desc: prometheus.NewDesc("thiqa_ready",
			"1 when the readiness check (the same as GET /readyz) passed at scrape time, by check.", []string{"check"}, nil),
		checks: checks,
	}
	if err := reg.Register(c); err != nil {
		return fmt.Errorf("registering readiness metrics: %w", err)
	}
	return nil
}

// Describe sends the one descriptor.
func (c *readiness) Describe(ch chan<- *prometheus.Desc) { ch <- c.desc }

// Collect runs every check and sends its result.
func (c *readiness) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), readinessTimeout)
	defer cancel()
	names := make([]string, 0, len(c.checks))
	for name := range c.checks {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		v := 1.0
		if err := c.checks[name](ctx); err != nil {
			v = 0
		}
		ch <- prometheus.MustNewConstMetric(c.desc, prometheus.GaugeValue, v, name)
	}
}
