// Package ratelimit limits requests per client IP with a token bucket each,
// in memory: each client may start burst requests at once and rate per
// second on average. The public verification endpoint and the digital-ID
// service's login starts and token endpoints use it; the client
// is the TCP peer, or the address a trusted proxy forwarded
// (clientip.Resolver.Middleware must run first).
package ratelimit

import (
	"math"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/thiqa/thiqa/internal/clientip"
	"github.com/thiqa/thiqa/internal/problem"
)

// maxBuckets bounds the limiter's memory; beyond it, idle buckets (full
// again) are dropped.
const maxBuckets = 100_000

// Limiter is a token bucket per key (a client IP). It is safe for
// concurrent use.
type Limiter struct {
	rate  float64
	burst float64
	now   func() time.Time

	mu      sync.Mutex
	buckets map[string]*bucket
}

type bucket struct {
	tokens float64
	last   time.Time
	// streak counts the refusals in a row since the last request let
	// through.
	streak int
}

// New returns a limiter allowing burst requests at once and rate per
// second on average for each key, reading the time from now.
func New(rate float64, burst int, now func() time.Time) *Limiter {
	return &Limiter{rate: rate, burst: float64(burst), now: now, buckets: map[string]*bucket{}}
}

// Allow takes one token from key's bucket; when none is left it returns
// false and how long until one is.
func (l *Limiter) Allow(key string) (bool, time.Duration) {
	d := l.Take(key)
	return d.Allowed, d.Wait
}

// Decision is the outcome of one request against a key's bucket.
type Decision struct {
	// Allowed: a token was taken.
	Allowed bool
	// Wait is how long until a token is back (zero when allowed).
	Wait time.Duration
	// Streak counts the key's refusals in a row, this one included (zero
	// when allowed). A service that records refusals in its audit log
	// records the first of each streak: a client that keeps knocking
	// cannot fill the log, and the streak's length goes into a metric.
	Streak int
}

// Take is Allow that also says how many refusals in a row the key has had.
func (l *Limiter) Take(key string) Decision {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.now()
	b, ok := l.buckets[key]
	if !ok {
		if len(l.buckets) >= maxBuckets {
			l.sweep(now)
		}
		b = &bucket{tokens: l.burst, last: now}
		l.buckets[key] = b
	}
	if el := now.Sub(b.last).Seconds(); el > 0 {
		b.tokens = math.Min(l.burst, b.tokens+el*l.rate)
	}
	b.last = now
	if b.tokens >= 1 {
		b.tokens--
		b.streak = 0
		return Decision{Allowed: true}
	}
	b.streak++
	return Decision{Wait: time.Duration((1 - b.tokens) / l.rate * float64(time.Second)), Streak: b.streak}
}

// ResetStreak makes key's next refusal the first of a run again (Streak
// 1): a service whose record of a run's first refusal could not be written
// calls it, so that the run's next refusal is recorded rather than none.
func (l *Limiter) ResetStreak(key string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if b, ok := l.buckets[key]; ok {
		b.streak = 0
	}
}

// Record takes one token from key's bucket for a refusal that a service
// records in its audit log, and says whether to record it: within the
// budget, and the first of each run of refusals past it (past is then
// true: the record says that the run's further refusals are counted, not
// recorded). A service whose record cannot be written calls ResetStreak.
func (l *Limiter) Record(key string) (record, past bool) {
	d := l.Take(key)
	return d.Allowed || d.Streak == 1, !d.Allowed
}

// RetryAfter is the Retry-After value (whole seconds, at least 1) of a
// refusal that must wait d.
func RetryAfter(d time.Duration) string {
	return strconv.Itoa(max(int(math.Ceil(d.Seconds())), 1))
}

// sweep drops buckets that have refilled (their clients are idle); if that
// frees nothing, it drops all of them rather than grow without bound.
func (l *Limiter) sweep(now time.Time) {
	for k, b := range l.buckets {
		if b.tokens+now.Sub(b.last).Seconds()*l.rate >= l.burst {
			delete(l.buckets, k)
		}
	}
	if len(l.buckets) >= maxBuckets {
		clear(l.buckets)
	}
}

// Middleware answers 429 with a problem body and Retry-After when the
// client IP has no token left. The client is the TCP peer, or the address
// a trusted proxy forwarded (clientip.Resolver.Middleware,
// verify.trustedProxies).
func (l *Limiter) Middleware(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if ok, wait := l.Allow(clientip.FromRequest(r).Key()); !ok {
			w.Header().Set("Retry-After", RetryAfter(wait))
			problem.Error(w, http.StatusTooManyRequests, "too many verifications from this address; retry later")
			return
		}
		next.ServeHTTP(w, r)
	})
}
