package auth

import (
	"fmt"
	"log/slog"
	"strings"

	"github.com/prometheus/client_golang/prometheus"
)

// CheckDevelopmentIssuers refuses a production deployment that trusts a
// development token issuer (dev, their "iss" names), warns about one
// otherwise, and says so in the metric thiqa_development_issuer_enabled.
func CheckDevelopmentIssuers(dev []string, production bool, logger *slog.Logger, reg prometheus.Registerer) error {
	g := prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "thiqa_development_issuer_enabled",
		Help: "1 while a development token issuer (tokens anyone with the data folder can mint with `thiqa token`) is trusted.",
	})
	if len(dev) > 0 {
		g.Set(1)
	}
	if err := reg.Register(g); err != nil {
		return fmt.Errorf("registering metrics: %w", err)
	}
	if len(dev) == 0 {
		return nil
	}
	if err := RefuseDevelopmentIssuers(dev, production); err != nil {
		return err
	}
	logger.Warn("a development token issuer is trusted: anyone who can read the data folder can mint tokens for any role (`thiqa token`); remove it from auth.issuers and set production: true before going live",
		"issuers", dev)
	return nil
}

// RefuseDevelopmentIssuers returns the error that refuses a production
// deployment (production true) trusting development token issuers (dev,
// their "iss" names), and nil for any other configuration. thiqa serve
// refuses to start with it (CheckDevelopmentIssuers), and thiqa config
// check reports it before the service is started.
func RefuseDevelopmentIssuers(dev []string, production bool) error {
	if !production || len(dev) == 0 {
		return nil
	}
	return fmt.Errorf("the configuration says production: true but trusts the development token issuer %s: remove it from auth.issuers (and keys.devTokenIssuer) and trust your identity provider instead", strings.Join(dev, ", "))
}
