package verify

import (
	"context"
	"errors"
	"fmt"
	"net/http"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/thiqa/thiqa/internal/clientip"
	"github.com/thiqa/thiqa/internal/inflight"
	"github.com/thiqa/thiqa/internal/problem"
)

// The limit label values of thiqa_verify_busy_total.
const (
	limitClient  = "client"
	limitOverall = "overall"
)

// gates are the concurrency bounds of the public route (Register).
type gates struct {
	perClient *inflight.Limiter // key: the client IP
	overall   *inflight.Limiter // one key
	busy      *prometheus.CounterVec
}

// clientMiddleware holds one of the client IP's slots for the whole
// request: its upload, spooled to memory or disk, and its verification.
// The client is the TCP peer, or the address a trusted proxy forwarded,
// as for the rate limit (clientip, verify.trustedProxies).
func (g *gates) clientMiddleware(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		release, err := g.perClient.Acquire(r.Context(), clientip.FromRequest(r).Key())
		if err != nil {
			g.refuse(w, err, limitClient, fmt.Sprintf("this address already has %d verifications in progress; retry when one has finished", g.perClient.Max()))
			return
		}
		defer release()
		next.ServeHTTP(w, r)
	})
}

// verification takes one of the slots of the verifications running over
// all clients, once the document is read; without one it answers 503.
func (g *gates) verification(ctx context.Context, w http.ResponseWriter) (release func(), ok bool) {
	release, err := g.overall.Acquire(ctx, "")
	if err != nil {
		g.refuse(w, err, limitOverall, "the server is verifying as many documents as it can at once; retry shortly")
		return nil, false
	}
	return release, true
}

// refuse answers 503 with Retry-After and a problem body, and counts it.
// A request whose client went away while it waited is answered the same
// way (nobody reads it) but not counted.
func (g *gates) refuse(w http.ResponseWriter, err error, limit, detail string) {
	if errors.Is(err, inflight.ErrBusy) {
		g.busy.WithLabelValues(limit).Inc()
	}
	w.Header().Set("Retry-After", busyRetryAfter)
	problem.Write(w, problem.Details{Status: http.StatusServiceUnavailable, Title: "Too many verifications in progress", Detail: detail})
}
