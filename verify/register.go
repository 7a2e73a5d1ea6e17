package verify

import (
	"fmt"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/thiqa/thiqa/internal/metrics"
	"github.com/thiqa/thiqa/internal/ratelimit"
)

// Mux is where the verifier's route is mounted (an *http.ServeMux).
type Mux interface {
	Handle(pattern string, handler http.Handler)
}

// RouteOptions bound the public POST /api/v1/verify.
type RouteOptions struct {
	// MaxUploadBytes bounds a request's body (Handler).
	MaxUploadBytes int64
	// RatePerSecond and Burst are each client's rate limit.
	RatePerSecond float64
	Burst         int
	// Registerer receives thiqa_verify_requests_total; nil: not registered.
	Registerer prometheus.Registerer
}

// Register serves POST /api/v1/verify on mux: Handler behind a per-client
// rate limit, its requests counted by HTTP status in
// thiqa_verify_requests_total.
func (v *Verifier) Register(mux Mux, o RouteOptions) error {
	requests := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "thiqa_verify_requests_total",
		Help: "POST /api/v1/verify requests by HTTP status (200: a report, 413: too large, 429: rate-limited).",
	}, []string{"code"})
	if o.Registerer != nil {
		if err := o.Registerer.Register(requests); err != nil {
			return fmt.Errorf("registering verify metrics: %w", err)
		}
	}
	limit := ratelimit.New(o.RatePerSecond, o.Burst, time.Now)
	mux.Handle("POST /api/v1/verify", metrics.CountStatus(requests, limit.Middleware(v.Handler(o.MaxUploadBytes))))
	return nil
}
