package audit

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"runtime"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/prometheus/client_golang/prometheus"
)

// maxYields bounds the writer's yields before it cuts a batch.
const maxYields = 16

// ErrClosed is returned by Append after Close.
var ErrClosed = errors.New("audit: log is closed")

// ErrInvalidEntry is returned (wrapped) for an entry that cannot be
// recorded: a missing actor, action or outcome, text that is not UTF-8 or
// holds NUL bytes, oversized fields, or details that do not marshal.
var ErrInvalidEntry = errors.New("audit: invalid entry")

// Options tunes a Log. Zero values mean the defaults.
type Options struct {
	// MaxBatch is the most records written in one transaction (default 256).
	MaxBatch int
	// QueueSize is how many appends may wait for the writer before Append
	// blocks (default 4×MaxBatch).
	QueueSize int
	// WriteTimeout bounds one batch's transaction (default 30 s).
	WriteTimeout time.Duration
	// AppendTimeout bounds how long one Append waits to be queued and
	// committed (default 1 min). An append runs under the Log's own
	// bounded context, not its caller's: a client that goes away does not
	// cancel the record of what was already done for it.
	AppendTimeout time.Duration
	// CommitInterval is the least time from the start of one batch to the
	// start of the next (default none). Appends arriving meanwhile join
	// the next batch, so each transaction, whose cost hardly depends on
	// its size, carries more records, and an append waits at most this
	// long for its batch to start. Without it the writer still lets every
	// runnable goroutine queue its append before it cuts a batch.
	CommitInterval time.Duration
	// MaxDetailsBytes bounds the marshalled details (default 64 KiB).
	MaxDetailsBytes int
	// MaxFieldBytes bounds actor, action, object and outcome (default 1 KiB).
	MaxFieldBytes int
	// Now is the clock (default time.Now).
	Now func() time.Time
}

func (o Options) withDefaults() Options {
	if o.MaxBatch <= 0 {
		o.MaxBatch = 256
	}
	if o.QueueSize <= 0 {
		o.QueueSize = 4 * o.MaxBatch
	}
	if o.WriteTimeout <= 0 {
		o.WriteTimeout = 30 * time.Second
	}
	if o.AppendTimeout <= 0 {
		o.AppendTimeout = time.Minute
	}
	if o.MaxDetailsBytes <= 0 {
		o.MaxDetailsBytes = 64 << 10
	}
	if o.MaxFieldBytes <= 0 {
		o.MaxFieldBytes = 1 << 10
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	return o
}

// Log appends records to the chain kept in a Store. Concurrent Append
// calls are gathered by one writer goroutine into batches, each written in
// one transaction (group commit). It is safe for concurrent use; several
// Logs, in one process or several, may append to the same database.
type Log struct {
	st     Store
	logger *slog.Logger
	opts   Options
	m      metrics

	mu      sync.RWMutex // guards closed and sends on queue against Close
	closed  bool
	queue   chan *request
	stopped chan struct{}
}

// request is one Append (or Group.Append) waiting for its batch.
type request struct {
	ctx  context.Context
	rec  Record // Seq, Time, PrevHash and Hash are filled in when sealed
	done chan result
	// group is set for an item of a collective record; rec is then unused
	// and item holds the item's JSON.
	group *Group
	item  []byte
}

type result struct {
	rec Record
	err error
}

// New starts a Log writing to st. Metrics are registered on reg (which may
// be nil); registering twice on one registry shares the collectors.
func New(st Store, logger *slog.Logger, reg prometheus.Registerer, opts Options) *Log {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	opts = opts.withDefaults()
	l := &Log{
		st:      st,
		logger:  logger,
		opts:    opts,
		m:       newMetrics(reg),
		queue:   make(chan *request, opts.QueueSize),
		stopped: make(chan struct{}),
	}
	go l.run()
	return l
}

// Append records e and returns the record once it is committed.
//
// The append is not cancelled with ctx (only ctx's values are used): a
// signature or token that was made is recorded even when the client that
// asked for it has gone away. It is bounded by Options.AppendTimeout
// instead: if that passes before the record reaches a batch, nothing is
// written; if it passes while the batch is being committed, Append returns
// the timeout at once but the record may still be written (the chain stays
// valid either way).
func (l *Log) Append(ctx context.Context, e Entry) (Record, error) {
	start := time.Now()
	rec, err := l.prepare(e)
	if err != nil {
		return Record{}, err
	}
	return l.enqueue(ctx, start, &request{rec: rec, done: make(chan result, 1)})
}

// enqueue hands req to the writer and waits for its commit, under the
// Log's own bounded context (see Append).
func (l *Log) enqueue(ctx context.Context, start time.Time, req *request) (Record, error) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), l.opts.AppendTimeout)
	defer cancel()
	req.ctx = ctx
	l.mu.RLock()
	if l.closed {
		l.mu.RUnlock()
		return Record{}, ErrClosed
	}
	select {
	case l.queue <- req:
		l.mu.RUnlock()
	case <-ctx.Done():
		l.mu.RUnlock()
		return Record{}, fmt.Errorf("audit: not recorded: %w", ctx.Err())
	}

	select {
	case res := <-req.done:
		l.m.latency.Observe(time.Since(start).Seconds())
		return res.rec, res.err
	case <-ctx.Done():
		return Record{}, fmt.Errorf("audit: gave up waiting for the commit (the record may still be written): %w", ctx.Err())
	}
}

// Close stops accepting appends, writes every append already queued and
// waits for the writer to finish. Append after Close returns ErrClosed.
func (l *Log) Close() {
	l.mu.Lock()
	if !l.closed {
		l.closed = true
		close(l.queue)
	}
	l.mu.Unlock()
	<-l.stopped
}

// prepare validates e and marshals its details.
func (l *Log) prepare(e Entry) (Record, error) {
	for _, f := range []struct{ name, v string }{
		{"actor", e.Actor}, {"action", e.Action}, {"object", e.Object}, {"outcome", e.Outcome},
	} {
		if f.v == "" && f.name != "object" {
			return Record{}, fmt.Errorf("%w: %s is empty", ErrInvalidEntry, f.name)
		}
		if err := checkText(f.v, l.opts.MaxFieldBytes); err != nil {
			return Record{}, fmt.Errorf("%w: %s %w", ErrInvalidEntry, f.name, err)
		}
	}
	details := []byte("{}")
	if e.Details != nil {
		b, err := json.Marshal(e.Details)
		if err != nil {
			return Record{}, fmt.Errorf("%w: details: %w", ErrInvalidEntry, err)
		}
		details = b
	}
	if err := checkText(string(details), l.opts.MaxDetailsBytes); err != nil {
		return Record{}, fmt.Errorf("%w: details %w", ErrInvalidEntry, err)
	}
	return Record{Actor: e.Actor, Action: e.Action, Object: e.Object, Outcome: e.Outcome, Details: details}, nil
}

// checkText accepts what both databases store as TEXT unchanged: valid
// UTF-8 without NUL bytes, at most max bytes.
func checkText(s string, max int) error {
	switch {
	case len(s) > max:
		return fmt.Errorf("is longer than %d bytes", max)
	case !utf8.ValidString(s):
		return errors.New("is not valid UTF-8")
	case strings.IndexByte(s, 0) >= 0:
		return errors.New("contains a NUL byte")
	}
	return nil
}

// run is the writer goroutine: it takes whatever appends are waiting (up
// to MaxBatch) and writes them in one transaction, until Close.
func (l *Log) run() {
	defer close(l.stopped)
	batch := make([]*request, 0, l.opts.MaxBatch)
	var last time.Time // start of the last batch
	for req := range l.queue {
		batch = append(batch[:0], req)
		if wait := l.opts.CommitInterval - time.Since(last); wait > 0 {
			time.Sleep(wait)
		}
		// Let runnable goroutines (callers released by the last commit,
		// requests on their way to an append) run and queue their records
		// before the batch is cut, as long as that makes the queue grow.
		// This costs nothing when no goroutine is waiting to run, and
		// keeps batches large when the CPUs are busy, without a timer.
		for range maxYields {
			n := len(l.queue)
			runtime.Gosched()
			if len(l.queue) == n {
				break
			}
		}
		last = time.Now()
	fill:
		for len(batch) < l.opts.MaxBatch {
			select {
			case r, ok := <-l.queue:
				if !ok {
					break fill
				}
				batch = append(batch, r)
			default:
				break fill
			}
		}
		l.write(batch)
	}
}

// write commits one batch and releases its callers.
func (l *Log) write(batch []*request) {
	// Callers that have given up before their record is sealed are not
	// written at all.
	live := batch[:0]
	for _, r := range batch {
		if err := r.ctx.Err(); err != nil {
			r.done <- result{err: fmt.Errorf("audit: not recorded: %w", err)}
			continue
		}
		live = append(live, r)
	}
	if len(live) == 0 {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), l.opts.WriteTimeout)
	defer cancel()
	// Records of the batch in order: one per Append, one per collective
	// record (its items gathered in the order they came).
	recs, owner := l.gather(live)
	sealed := make([]Record, len(recs))
	err := l.st.AppendAuditRecords(ctx, func(h Head) ([]Record, error) {
		l.seal(h, recs, sealed)
		return sealed, nil
	})
	if err != nil {
		err = fmt.Errorf("audit: writing %d records: %w", len(recs), err)
		l.logger.Error("audit: batch failed", "records", len(recs), "requests", len(live), "err", err)
		l.m.failures.Add(float64(len(live)))
		for _, r := range live {
			r.done <- result{err: err}
		}
		return
	}
	l.m.batch.Observe(float64(len(recs)))
	for _, rec := range sealed {
		l.m.records(rec.Outcome).Inc()
	}
	for i, r := range live {
		if r.group != nil {
			l.m.items.Inc()
		}
		r.done <- result{rec: sealed[owner[i]]}
	}
}

// seal fills out[i] with recs[i] continuing the chain at h.
func (l *Log) seal(h Head, recs []Record, out []Record) {
	now := time.Unix(0, l.opts.Now().UnixNano()).UTC()
	prev, seq := h.Hash, h.Seq
	buf := make([]byte, 0, 512)
	for i, rec := range recs {
		seq++
		rec.Seq, rec.Time, rec.PrevHash = seq, now, prev
		buf = appendCanonical(buf[:0], rec)
		rec.Hash = sum256(buf)
		out[i] = rec
		prev = rec.Hash
	}
}
