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

// readinessWarnings is a collector that reads the readiness warnings at
// every scrape.
type readinessWarnings struct {
	desc     *prometheus.Desc
	warnings map[string]func() string
}

// RegisterReadinessWarnings registers thiqa_ready_warning{check}: 1 when
// the warning of that name (the text GET /readyz shows in place of "ok",
// still 200) was set when Prometheus scraped, 0 when not. It is how the
// alert rules hear of what must not take the instance out of the load
// balancer (thiqa_ready). The map is read at every scrape, as
// RegisterReadiness's.
func RegisterReadinessWarnings(reg prometheus.Registerer, warnings map[string]func() string) error {
	if reg == nil {
		return nil
	}
	c := &readinessWarnings{
		desc: prometheus.NewDesc("thiqa_ready_warning",
			"1 when the readiness warning (GET /readyz shows it in place of \"ok\", still 200) was set at scrape time, by check.", []string{"check"}, nil),
		warnings: warnings,
	}
	if err := reg.Register(c); err != nil {
		return fmt.Errorf("registering readiness warning metrics: %w", err)
	}
	return nil
}

// Describe sends the one descriptor.
func (c *readinessWarnings) Describe(ch chan<- *prometheus.Desc) { ch <- c.desc }

// Collect reads every warning and sends whether it is set.
func (c *readinessWarnings) Collect(ch chan<- prometheus.Metric) {
	names := make([]string, 0, len(c.warnings))
	for name := range c.warnings {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		v := 0.0
		if c.warnings[name]() != "" {
			v = 1
		}
		ch <- prometheus.MustNewConstMetric(c.desc, prometheus.GaugeValue, v, name)
	}
}
