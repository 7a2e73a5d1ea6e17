package crl

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"math/big"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/thiqa/thiqa/internal/problem"
)

// Publisher keeps the latest CRL of every (CA, partition) in memory,
// regenerates them on a schedule and soon after Trigger, and serves them.
// Alone it signs every CRL it serves; sharing a SharedStore with the other
// nodes of a cluster (Share), it signs only what is due under the CA's lock
// and serves the CRLs stored.
type Publisher struct {
	log    *slog.Logger
	gens   map[string]*Generator
	every  time.Duration
	maxAge time.Duration
	delay  time.Duration
	max    int
	now    func() time.Time

	mu     sync.RWMutex
	latest map[string]*served // by file name
	// added is closed, and replaced, whenever a name is first served
	// (putLocked): requests waiting for the first publication
	// (awaitFirst) look again. Under mu.
	added chan struct{}

	trigger chan string

	// first is closed once Run's first publication (alone) or first
	// signing and reading of the store (shared) is over; firstOnce closes
	// it; firstWait bounds how long a request for a CRL the CA publishes
	// waits for it (ServeHTTP).
	first     chan struct{}
	firstOnce sync.Once
	firstWait time.Duration
	// stopWait is closed by StopWaiting (the server shuts down): requests
	// waiting for the first publication are answered at once.
	stopWait     chan struct{}
	stopWaitOnce sync.Once

	// Shared publication (Share): nil shared publishes alone.
	shared      SharedStore
	syncEvery   time.Duration
	switchDelay time.Duration
	syncFailed  bool
	pending     map[string]*Published // by complete CRL file name, under mu
	nextSwitch  time.Time             // earliest pending ServeFrom, zero when none; under mu

	// Publication alone (Remember): memory records the CRLs published;
	// held is the thisUpdate of the last CRL of each name it recorded
	// before this process, recalled the CAs read; both under mu.
	memory   Memory
	held     map[string]time.Time
	recalled map[string]bool

	genSeconds *prometheus.HistogramVec
	entries    *prometheus.GaugeVec
	number     *prometheus.GaugeVec
	nextUpdate *prometheus.GaugeVec
	failures   *prometheus.CounterVec
	oversized  *prometheus.CounterVec
}

type served struct {
	crl  *CRL
	etag string
}

// NewPublisher builds a publisher over one generator per issuing CA; the
// schedule comes from set (RegenerateEvery, TriggerDelay,
// MaxEntriesPerPartition). Metrics are registered on reg when non-nil.
func NewPublisher(set Settings, log *slog.Logger, reg prometheus.Registerer, gens ...*Generator) (*Publisher, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	p := &Publisher{
		log: log, gens: make(map[string]*Generator, len(gens)), every: set.RegenerateEvery, maxAge: set.MaxAge, delay: set.TriggerDelay,
		max: set.MaxEntriesPerPartition, now: time.Now, latest: map[string]*served{}, added: make(chan struct{}), trigger: make(chan string, 64),
		first: make(chan struct{}), firstWait: firstWait, stopWait: make(chan struct{}),
		genSeconds: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "thiqa_crl_generation_seconds",
			Help: "Time to stream, lint and sign one CRL.", Buckets: prometheus.ExponentialBuckets(0.001, 4, 10)}, []string{"ca"}),
		entries: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "thiqa_crl_entries",
			Help: "Entries on the latest CRL."}, []string{"crl"}),
		number: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "thiqa_crl_number",
			Help: "CRL number of the latest CRL."}, []string{"crl"}),
		nextUpdate: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "thiqa_crl_next_update_seconds",
			Help: "nextUpdate (Unix time) of the latest CRL served."}, []string{"crl"}),
		failures: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "thiqa_crl_generation_failures_total",
			Help: "CRL generations that failed."}, []string{"ca"}),
		oversized: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "thiqa_crl_oversized_total",
			Help: "CRLs published with more entries than maxEntriesPerPartition."}, []string{"crl"}),
	}
	for _, g := range gens {
		if _, dup := p.gens[g.Issuer()]; dup {
			return nil, fmt.Errorf("%w: two generators for %s", ErrConfig, g.Issuer())
		}
		p.gens[g.Issuer()] = g
		p.failures.WithLabelValues(g.Issuer()) // exported from the start: the first failure is an increase
	}
	if reg != nil {
		for _, c := range []prometheus.Collector{p.genSeconds, p.entries, p.number, p.nextUpdate, p.failures, p.oversized} {
			if err := reg.Register(c); err != nil {
				return nil, fmt.Errorf("registering CRL metrics: %w", err)
			}
		}
	}
	return p, nil
}

// PublishCA regenerates every partition of one CA now (and, with delta
// CRLs, each partition's delta relative to it). Shared (Share), it signs
// under the CA's lock and the nodes serve the new CRLs from their
// ServeFrom on.
func (p *Publisher) PublishCA(ctx context.Context, ca string) error {
	if p.shared != nil {
		return p.publishShared(ctx, ca, forceComplete)
	}
	return p.publish(ctx, ca, false)
}

// PublishDeltas regenerates the delta CRL of every partition of one CA
// now, relative to the partition's latest complete CRL (made first when
// there is none yet); without delta CRLs it is PublishCA. Shared, the
// base is the complete CRL stored.
func (p *Publisher) PublishDeltas(ctx context.Context, ca string) error {
	if p.shared != nil {
		return p.publishShared(ctx, ca, deltasOnly)
	}
	return p.publish(ctx, ca, true)
}

// publish regenerates one CA's complete CRLs, or only their deltas when
// deltasOnly (and the CA has deltas and a complete CRL to build on).
func (p *Publisher) publish(ctx context.Context, ca string, deltasOnly bool) error {
	g, ok := p.gens[ca]
	if !ok {
		return fmt.Errorf("no CRL generator for CA %q", ca)
	}
	p.recall(ctx, ca)
	var errs []error
	for _, part := range g.PartitionNumbers() {
		start := time.Now()
		name, deltaName := FileName(ca, part), DeltaFileName(ca, part)
		base, _ := p.Latest(name)
		prevDelta, _ := p.Latest(deltaName)
		var c, complete *CRL
		var err error
		if !deltasOnly || !g.Deltas() || base == nil {
			c, err = g.Generate(ctx, part, p.dateAfter(ctx, name, base, p.now()))
			complete = c
			if err == nil && g.Deltas() {
				p.store(c)
				p.warnRedated(ctx, c)
				base = c
				c, err = g.GenerateDelta(ctx, base, p.dateAfter(ctx, deltaName, prevDelta, p.now()))
				if err != nil {
					p.remember(ctx, g, complete, nil)
				}
			}
		} else {
			c, err = g.GenerateDelta(ctx, base, p.dateAfter(ctx, deltaName, prevDelta, p.now()))
		}
		p.genSeconds.WithLabelValues(ca).Observe(time.Since(start).Seconds())
		if err != nil {
			p.failures.WithLabelValues(ca).Inc()
			p.log.ErrorContext(ctx, "CRL generation failed", "ca", ca, "partition", part, "err", err)
			errs = append(errs, err)
			continue
		}
		p.store(c)
		if c == complete {
			p.remember(ctx, g, complete, nil)
		} else {
			p.remember(ctx, g, complete, c)
		}
		p.log.InfoContext(ctx, "CRL published", "crl", c.Name, "number", c.Number.String(), "entries", c.Entries,
			"bytes", len(c.DER), "seconds", time.Since(start).Seconds())
		p.warnRedated(ctx, c)
		if c.Entries > p.max {
			p.oversized.WithLabelValues(c.Name).Inc()
			p.log.WarnContext(ctx, "CRL partition above maxEntriesPerPartition", "crl", c.Name, "entries", c.Entries, "max", p.max)
		}
		if c.Deferred > 0 {
			p.Trigger(ca) // entries revoked during generation go on the next CRL soon
		}
	}
	return errors.Join(errs...)
}

// maxHold is how far the clock may be behind the thisUpdate of the last
// CRL of a name for the next one to keep that thisUpdate (dateAfter). NTP
// corrections and leap seconds step the clock by seconds; a step of more
// is an operator or a daemon correcting a clock that was wrong, which the
// CRLs follow at once rather than stay dated ahead of it.
const maxHold = 5 * time.Minute

// dateAfter returns the time to date the next CRL named name when the
// clock reads now; prev is the last one this process holds of that name
// (nil: none), and a publisher alone with a Memory also knows the last one
// published before it started. After a backward clock step of at most
// maxHold it is the last CRL's thisUpdate, so that thisUpdate and
// nextUpdate never go back (relying parties and caches that keep the CRL
// with the latest thisUpdate would ignore the new one, RFC 5280 §5.1.2.4-5);
// after a larger step it is now, with a warning: the CRL number still
// orders the CRLs (§5.2.3).
func (p *Publisher) dateAfter(ctx context.Context, name string, prev *CRL, now time.Time) time.Time {
	last := p.lastThisUpdate(name, prev)
	if !last.After(now) {
		return now
	}
	behind := last.Sub(now)
	if behind <= maxHold {
		if behind > time.Second { // within a second is two CRLs in one (thisUpdate is whole seconds)
			p.log.WarnContext(ctx, "clock is behind the last CRL's thisUpdate: the new CRL keeps that thisUpdate",
				"crl", name, "behind", behind.String(), "thisUpdate", last.Format(time.RFC3339))
		}
		return last
	}
	p.log.WarnContext(ctx, "clock is far behind the last CRL's thisUpdate (stepped back): the new CRL is dated by the clock, earlier than the last one; its CRL number is still higher",
		"crl", name, "behind", behind.String(), "thisUpdate", last.Format(time.RFC3339), "maxHold", maxHold.String())
	return now
}

// warnRedated logs the entries of c recorded with a revocation time ahead
// of the clock, which c lists as revoked by its thisUpdate.
func (p *Publisher) warnRedated(ctx context.Context, c *CRL) {
	if c.Redated > 0 {
		p.log.WarnContext(ctx, "revocations dated ahead of the clock (clock stepped back, or a node runs ahead): listed as revoked at the CRL's thisUpdate",
			"crl", c.Name, "entries", c.Redated, "thisUpdate", c.ThisUpdate.Format(time.RFC3339))
	}
}

// PublishAll regenerates the CRLs of every CA now.
func (p *Publisher) PublishAll(ctx context.Context) error {
	var errs []error
	for ca := range p.gens {
		errs = append(errs, p.PublishCA(ctx, ca))
	}
	return errors.Join(errs...)
}

func (p *Publisher) store(c *CRL) {
	p.mu.Lock()
	served := p.putLocked(c)
	p.mu.Unlock()
	p.observe(served)
}

// putLocked makes c the CRL served under its name unless the one served
// has a higher number, and returns the one served; p.mu is held.
func (p *Publisher) putLocked(c *CRL) *CRL {
	sum := sha256.Sum256(c.DER)
	s := &served{crl: c, etag: `"` + hex.EncodeToString(sum[:16]) + `"`}
	// Never replace a CRL with one of a lower number (two runs racing).
	if old, ok := p.latest[c.Name]; !ok || old.crl.Number.Cmp(c.Number) < 0 {
		p.latest[c.Name] = s
		if !ok {
			close(p.added)
			p.added = make(chan struct{})
		}
	}
	return p.latest[c.Name].crl
}

// observe sets the metrics of the CRL served under served.Name.
func (p *Publisher) observe(served *CRL) {
	p.entries.WithLabelValues(served.Name).Set(float64(served.Entries))
	f, _ := new(big.Float).SetInt(served.Number).Float64()
	p.number.WithLabelValues(served.Name).Set(f)
	if served.BaseNumber == nil {
		// Complete CRLs only: a delta's short nextUpdate is renewed with
		// every regeneration and is not what the freshness alerts watch.
		p.nextUpdate.WithLabelValues(served.Name).Set(float64(served.NextUpdate.Unix()))
	}
}

// Latest returns the latest CRL published under a file name ("citizen.crl").
func (p *Publisher) Latest(name string) (*CRL, bool) {
	s, ok := p.current(name)
	if !ok {
		return nil, false
	}
	return s.crl, true
}

// NextUpdateOf returns the nextUpdate (Unix time) of the latest CRL
// published under a file name, 0 while there is none (the gauge of
// RegisterRootMetrics when the publisher generates the root CRL).
func (p *Publisher) NextUpdateOf(name string) float64 {
	if c, ok := p.Latest(name); ok {
		return float64(c.NextUpdate.Unix())
	}
	return 0
}

// Trigger asks for the CA's CRLs to be regenerated after the debounce delay
// (a revocation just happened). It never blocks.
func (p *Publisher) Trigger(ca string) {
	select {
	case p.trigger <- ca:
	default: // a burst of revocations: the queued triggers cover it
	}
}

// firstWait is how long a request for a CRL that the CA publishes but
// that is not there yet waits for the first publication after a start:
// the server listens (and its ready file is written) while the first CRLs
// are signed in the background, which under load takes seconds.
const firstWait = 10 * time.Second

// firstDone marks Run's first publication over: the CRLs the CA publishes
// are served, or their generation failed and was logged.
func (p *Publisher) firstDone() { p.firstOnce.Do(func() { close(p.first) }) }

// publishes reports whether name is the file name of a CRL (complete or
// delta) that one of p's CAs publishes.
func (p *Publisher) publishes(name string) bool {
	for ca, g := range p.gens {
		if !strings.HasPrefix(name, ca) {
			continue
		}
		for _, part := range g.PartitionNumbers() {
			if name == FileName(ca, part) || (g.Deltas() && name == DeltaFileName(ca, part)) {
				return true
			}
		}
	}
	return false
}

// StopWaiting ends the waits of requests for a CRL not published yet
// (ServeHTTP), now and from now on: they are answered 503 at once. The
// server calls it when it starts shutting down, whose wait for the
// requests in flight such a request would otherwise hold for up to
// firstWait (the first publication ends only once the server has stopped).
func (p *Publisher) StopWaiting() { p.stopWaitOnce.Do(func() { close(p.stopWait) }) }

// awaitFirst waits, at most firstWait, while ctx lasts and until
// StopWaiting, for name to be served or else Run's first publication to
// end, and returns what is served under name then. It looks again each
// time a name is first served: a CRL stored early in the first
// publication (one of many partitions or CAs), or one another node signed
// and this one read from the store (shared) while its own first
// publication waits for the CA's lock, is served at once, not after the
// rest of the publication or the whole wait.
func (p *Publisher) awaitFirst(ctx context.Context, name string) (*served, bool) {
	t := time.NewTimer(p.firstWait)
	defer t.Stop()
	for {
		p.mu.RLock()
		added := p.added // taken before looking, so no first serving is missed
		p.mu.RUnlock()
		if s, ok := p.current(name); ok {
			return s, true
		}
		select {
		case <-added:
			continue
		case <-p.first:
		case <-t.C:
		case <-ctx.Done():
		case <-p.stopWait:
		}
		return p.current(name)
	}
}

// Run publishes every CRL, then regenerates on the schedule and after
// triggers until ctx ends. Shared (Share), it first serves the CRLs stored,
// signs only those due, and reads the store every SyncEvery.
func (p *Publisher) Run(ctx context.Context) error {
	// onTick publishes on the schedule and reports whether that covered
	// the triggers waiting (a complete publication alone: its deltas).
	var onTick func() bool
	if p.shared != nil {
		wait := p.startSync(ctx)
		defer wait()
		onTick = func() bool { p.publishDue(ctx); return false }
		onTick()
		p.firstDone()
	} else {
		if err := p.PublishAll(ctx); err != nil {
			p.log.ErrorContext(ctx, "initial CRL publication incomplete", "err", err)
		}
		p.firstDone()
		onTick = func() bool { _ = p.PublishAll(ctx); return true } // failures are logged and counted
	}
	tick := time.NewTicker(p.every)
	defer tick.Stop()
	pending := map[string]bool{}
	var debounce <-chan time.Time
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-tick.C:
			if onTick() {
				clear(pending)
				debounce = nil
			}
		case ca := <-p.trigger:
			pending[ca] = true
			if debounce == nil {
				debounce = time.After(p.delay)
			}
		case <-debounce:
			debounce = nil
			for ca := range pending {
				_ = p.PublishDeltas(ctx, ca) // PublishCA without delta CRLs; shared, under the CA's lock
			}
			clear(pending)
		}
	}
}

// ServeHTTP serves GET/HEAD /crl/{name}.crl with Content-Type
// application/pkix-crl, ETag, Last-Modified (thisUpdate), Expires
// (now + max-age) and a max-age bounded by both nextUpdate and MaxAge, so
// caches pick up new revocations in time. A CRL the CA publishes is never
// answered 404: a request that comes before the first publication after a
// start waits for it (firstWait at most), and one that finds it still
// missing (its generation failed) is answered 503 with Retry-After.
// Names the CAs do not publish are 404.
func (p *Publisher) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		problem.Error(w, http.StatusMethodNotAllowed, "CRLs are fetched with GET")
		return
	}
	i := strings.LastIndex(r.URL.Path, "/")
	name := r.URL.Path[i+1:]
	if !strings.HasSuffix(name, ".crl") {
		problem.Error(w, http.StatusNotFound, "no such CRL")
		return
	}
	s, ok := p.current(name)
	if !ok && p.publishes(name) {
		if s, ok = p.awaitFirst(r.Context(), name); !ok {
			w.Header().Set("Retry-After", "5")
			problem.Error(w, http.StatusServiceUnavailable, "this CRL is not published yet: try again shortly")
			return
		}
	}
	if !ok {
		problem.Error(w, http.StatusNotFound, "no such CRL")
		return
	}
	now := p.now()
	maxAge := min(s.crl.NextUpdate.Sub(now), p.maxAge)
	if maxAge < 0 {
		maxAge = 0
	}
	h := w.Header()
	h.Set("Content-Type", "application/pkix-crl")
	h.Set("ETag", s.etag)
	h.Set("Cache-Control", "public, max-age="+strconv.Itoa(int(maxAge/time.Second)))
	h.Set("Expires", now.Add(maxAge).UTC().Format(http.TimeFormat))
	http.ServeContent(w, r, name, s.crl.ThisUpdate, bytes.NewReader(s.crl.DER))
}
