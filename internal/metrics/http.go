package metrics

import (
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// RouteOther is the route label of a request no route matched (404, 405,
// the mux's redirects).
const RouteOther = "other"

// httpBuckets spans an OCSP answer from the cache (well under a
// millisecond) to a sealed 1 GB PDF (tens of seconds).
var httpBuckets = []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30}

// statusClasses are the code_class label values; index = status/100.
var statusClasses = [...]string{"other", "1xx", "2xx", "3xx", "4xx", "5xx"}

// HTTP counts and times HTTP requests by route and status class:
//
//	thiqa_http_requests_total{route, code_class}
//	thiqa_http_request_duration_seconds{route}
//
// The route is the pattern of the http.ServeMux route that served the
// request ("POST /api/v1/seal", "GET /crl/{name}"), one of the fixed
// prefixes given to NewHTTP for handlers that see requests before the mux,
// or "other": never the raw path, so the label sets stay bounded and carry
// no identifiers from the URL.
type HTTP struct {
	requests *prometheus.CounterVec
	duration *prometheus.HistogramVec
	prefixes []string // longest first

	routes sync.Map // route → *routeMetrics
}

// routeMetrics are one route's children, resolved once. Only the 2xx, 4xx
// and 5xx counters are created up front (so that error ratios have a zero
// to start from); the rarer classes appear when first seen.
type routeMetrics struct {
	classes  [len(statusClasses)]prometheus.Counter
	duration prometheus.Observer
}

// NewHTTP registers the HTTP metrics on reg (nil: not exported). prefixes
// are the path prefixes served by handlers in front of the mux; a request
// they take is reported under the prefix itself as its route.
func NewHTTP(reg prometheus.Registerer, prefixes ...string) (*HTTP, error) {
	m := &HTTP{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "thiqa_http_requests_total",
			Help: "HTTP requests by route (the mux pattern, a fixed prefix or \"other\") and status class.",
		}, []string{"route", "code_class"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "thiqa_http_request_duration_seconds",
			Help:    "Time from receiving an HTTP request's headers to the handler's return, by route.",
			Buckets: httpBuckets,
		}, []string{"route"}),
		prefixes: slices.Clone(prefixes),
	}
	slices.SortFunc(m.prefixes, func(a, b string) int { return len(b) - len(a) })
	if reg != nil {
		for _, c := range []prometheus.Collector{m.requests, m.duration} {
			if err := reg.Register(c); err != nil {
				return nil, fmt.Errorf("registering HTTP metrics: %w", err)
			}
		}
	}
	return m, nil
}

// Handler wraps next. next must be the http.ServeMux, or reach it without
// replacing the *http.Request (the mux records the matched pattern in the
// request it is given, and that request's Pattern is read afterwards).
func (m *HTTP) Handler(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		rec := &codeRecorder{ResponseWriter: w}
		returned := false
		defer func() {
			code := rec.code
			if code == 0 {
				code = http.StatusOK
				if !returned { // the handler panicked before writing
					code = http.StatusInternalServerError
				}
			}
			route := m.routeOf(r)
			rm, class := m.route(route), classIndex(code)
			if c := rm.classes[class]; c != nil {
				c.Inc()
			} else {
				m.requests.WithLabelValues(route, statusClasses[class]).Inc()
			}
			rm.duration.Observe(time.Since(start).Seconds())
		}()
		next.ServeHTTP(rec, r)
		returned = true
	})
}

// routeOf names the route that served r.
func (m *HTTP) routeOf(r *http.Request) string {
	if r.Pattern != "" {
		return r.Pattern
	}
	for _, p := range m.prefixes {
		if strings.HasPrefix(r.URL.Path, p) {
			return p
		}
	}
	return RouteOther
}

// route returns the children of one route, creating them on first use.
func (m *HTTP) route(name string) *routeMetrics {
	if rm, ok := m.routes.Load(name); ok {
		return rm.(*routeMetrics)
	}
	rm := &routeMetrics{duration: m.duration.WithLabelValues(name)}
	for _, i := range []int{2, 4, 5} {
		rm.classes[i] = m.requests.WithLabelValues(name, statusClasses[i])
	}
	actual, _ := m.routes.LoadOrStore(name, rm)
	return actual.(*routeMetrics)
}

// classIndex maps a status code to its index in statusClasses.
func classIndex(code int) int {
	if c := code / 100; c >= 1 && c <= 5 {
		return c
	}
	return 0
}

// codeRecorder remembers the status code a handler sent.
type codeRecorder struct {
	http.ResponseWriter
	code int
}

// WriteHeader records the first status code.
func (c *codeRecorder) WriteHeader(code int) {
	if c.code == 0 {
		c.code = code
	}
	c.ResponseWriter.WriteHeader(code)
}

// Write records an implicit 200.
func (c *codeRecorder) Write(b []byte) (int, error) {
	if c.code == 0 {
		c.code = http.StatusOK
	}
	return c.ResponseWriter.Write(b)
}

// Unwrap lets http.ResponseController reach the underlying writer.
func (c *codeRecorder) Unwrap() http.ResponseWriter { return c.ResponseWriter }

// CountStatus counts the responses of next in c by status code (its one
// label, "200", "413"…).
func CountStatus(c *prometheus.CounterVec, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rec := &codeRecorder{ResponseWriter: w}
		next.ServeHTTP(rec, r)
		if rec.code == 0 {
			rec.code = http.StatusOK
		}
		c.WithLabelValues(strconv.Itoa(rec.code)).Inc()
	})
}
