package verify

import (
	"fmt"
	"net/http"
	"runtime"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/thiqa/thiqa/internal/inflight"
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
	// MaxConcurrent bounds the verifications running at once over all
	// clients (0: DefaultMaxConcurrent).
	MaxConcurrent int
	// MaxConcurrentPerClient bounds the requests one client IP has in
	// progress at once, its uploads included (0:
	// DefaultMaxConcurrentPerClient).
	MaxConcurrentPerClient int
	// Registerer receives thiqa_verify_requests_total,
	// thiqa_verify_busy_total and thiqa_verify_in_flight; nil: not
	// registered.
	Registerer prometheus.Registerer
}

// DefaultMaxConcurrentPerClient is RouteOptions.MaxConcurrentPerClient's
// default: a person with the page open in two tabs, not a load generator.
const DefaultMaxConcurrentPerClient = 2

// DefaultMaxConcurrent is RouteOptions.MaxConcurrent's default (and
// verify.maxConcurrent's): two verifications per CPU the process may use,
// so that one waiting on an online fetch leaves its CPU to another.
func DefaultMaxConcurrent() int { return 2 * runtime.GOMAXPROCS(0) }

// busyWait is how long a request waits for a free slot before it is
// refused with 503.
const busyWait = time.Second

// busyRetryAfter is the Retry-After (seconds) of a 503 for lack of a slot.
const busyRetryAfter = "3"

// Register serves POST /api/v1/verify on mux: Handler behind a per-client
// rate limit and bounds on the requests in progress (per client IP, from
// before the upload is read to the report; and over all clients, around
// the verification itself, so that a slow upload holds no verification
// slot). A request that finds no slot free within a second gets 503 with
// Retry-After and a problem body, counted in thiqa_verify_busy_total by
// the limit reached. Requests are counted by HTTP status in
// thiqa_verify_requests_total; thiqa_verify_in_flight is the number of
// verifications running.
func (v *Verifier) Register(mux Mux, o RouteOptions) error {
	requests := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "thiqa_verify_requests_total",
		Help: "POST /api/v1/verify requests by HTTP status (200: a report, 413: too large, 429: rate-limited).",
	}, []string{"code"})
	busy := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "thiqa_verify_busy_total",
		Help: "POST /api/v1/verify requests refused with 503 for lack of a free slot, by the limit reached (client: the client IP's requests in progress, overall: the verifications running).",
	}, []string{"limit"})
	perClient, err := inflight.New(cmpOr(o.MaxConcurrentPerClient, DefaultMaxConcurrentPerClient), busyWait)
	if err != nil {
		return fmt.Errorf("verify: per-client concurrency: %w", err)
	}
	overall, err := inflight.New(cmpOr(o.MaxConcurrent, DefaultMaxConcurrent()), busyWait)
	if err != nil {
		return fmt.Errorf("verify: concurrency: %w", err)
	}
	running := prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "thiqa_verify_in_flight",
		Help: "Verifications of POST /api/v1/verify running now (at most verify.maxConcurrent).",
	}, func() float64 { return float64(overall.InFlight()) })
	// Exported at zero from the start: the first refusals are an increase
	// an alert sees, and the busy share (ThiqaVerifyBusy) has its
	// denominator before the first request.
	for _, l := range []string{limitClient, limitOverall} {
		busy.WithLabelValues(l)
	}
	requests.WithLabelValues(strconv.Itoa(http.StatusOK))
	if o.Registerer != nil {
		for _, c := range []prometheus.Collector{requests, busy, running} {
			if err := o.Registerer.Register(c); err != nil {
				return fmt.Errorf("registering verify metrics: %w", err)
			}
		}
	}
	g := &gates{perClient: perClient, overall: overall, busy: busy}
	limit := ratelimit.New(o.RatePerSecond, o.Burst, time.Now)
	h := v.handler(o.MaxUploadBytes, g.verification)
	mux.Handle("POST /api/v1/verify", metrics.CountStatus(requests, limit.Middleware(g.clientMiddleware(h))))
	return nil
}

// cmpOr returns n, or def when n is not positive.
func cmpOr(n, def int) int {
	if n > 0 {
		return n
	}
	return def
}
