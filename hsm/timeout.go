package hsm

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/thiqa/thiqa/internal/outage"
)

// A PKCS#11 call cannot be interrupted: a network HSM whose link died
// without a reset leaves the call blocked in the module, and miekg/pkcs11
// has no timeout of its own. So every operation runs its PKCS#11 calls in
// a goroutine of its own and waits for them at most until its deadline:
// the caller's, and no later than the Token's call timeout (Config.CallTimeout).
// A caller whose deadline passes gets ErrTimeout, marked as an outage, and
// goes; the call is left to finish. Until it does it keeps its pool slot
// (the session is still the module's), so the pool never opens more
// sessions than its bound; when it returns, its session is closed rather
// than reused, and the slot is freed. While such a call has been running
// for longer than the call timeout, Ping fails, so /readyz takes the node
// out of the load balancer until the token answers again.

const (
	// DefaultCallTimeout is the call timeout of a Config or TokenConfig
	// that sets none.
	DefaultCallTimeout = 10 * time.Second
	// MinCallTimeout and MaxCallTimeout bound TokenConfig.CallTimeout.
	MinCallTimeout = 100 * time.Millisecond
	MaxCallTimeout = 10 * time.Minute
)

// ErrTimeout is in the chain of the error of an operation the token did
// not serve before the operation's deadline (its session wait aside, which
// ends in context.DeadlineExceeded as before): the caller's or the call
// timeout. Such errors are marked with outage.Mark. Ping's error wraps it
// too while calls the token has not answered are outstanding.
var ErrTimeout = errors.New("hsm: the token did not answer in time")

// Call states: the operation's goroutine and its caller race to move a
// call out of callRunning; the winner decides who cleans up.
const (
	callRunning int32 = iota
	callFinished
	callAbandoned
)

// call is one attempt of an operation running in its own goroutine.
type call struct {
	state atomic.Int32
	done  chan struct{} // closed when gen and err are set (not abandoned)
	// counted is closed by abandon once the call is among the hung ones:
	// the goroutine of an abandoned call waits for it before it forgets
	// the call, so the two never interleave the other way round (which
	// would leave the call counted as hung for ever, and Ping failing).
	counted chan struct{}
	start   time.Time
	gen     uint64
	err     error
}

// withCallTimeout bounds ctx by the call timeout (the earlier deadline wins).
func (t *Token) withCallTimeout(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(ctx, t.callTimeout)
}

// runBounded runs fn with a session (run) for a caller holding a pool slot,
// and gives the slot back. When ctx can end, fn runs in a goroutine and
// the caller waits for it until ctx ends: then the call is abandoned (the
// goroutine gives the slot back and closes the session when fn returns)
// and the error wraps ErrTimeout, marked, or the caller's cancellation.
func (t *Token) runBounded(ctx context.Context, fn func(*session) error) (uint64, error) {
	if ctx.Done() == nil { // nothing can end the wait: no goroutine needed
		gen, err := t.run(fn, nil)
		t.pool.leave(t.m)
		return gen, err
	}
	c := &call{done: make(chan struct{}), counted: make(chan struct{}), start: time.Now()}
	go t.runCall(c, fn)
	select {
	case <-c.done:
		t.pool.leave(t.m)
		return c.gen, c.err
	case <-ctx.Done():
	}
	if !c.state.CompareAndSwap(callRunning, callAbandoned) {
		<-c.done // it finished as the deadline passed: take its result
		t.pool.leave(t.m)
		return c.gen, c.err
	}
	if h := t.testHookAbandoned; h != nil {
		h()
	}
	t.abandon(c, !errors.Is(ctx.Err(), context.Canceled))
	return 0, t.timeoutErr(ctx, c.start)
}

// runCall is the goroutine of call c.
func (t *Token) runCall(c *call, fn func(*session) error) {
	gen, err := t.run(fn, c)
	if c.state.Load() == callFinished {
		c.gen, c.err = gen, err
		close(c.done)
		return
	}
	// Abandoned: run has closed or dropped the session; the slot and the
	// count of outstanding calls are ours to give back, once the caller
	// has counted the call (abandon follows its CAS at once).
	t.pool.leave(t.m)
	<-c.counted
	t.returned(c, err)
}

// finish settles call c (nil: a call nobody can abandon) once its work is
// over: true when its caller still waits, false when it was abandoned.
func (c *call) finish() bool {
	return c == nil || c.state.CompareAndSwap(callRunning, callFinished)
}

// abandoned reports whether the caller of c (nil: none) has gone.
func (c *call) abandoned() bool { return c != nil && c.state.Load() == callAbandoned }

// timeoutErr is the error of an operation whose deadline ctx passed while
// it was running since start.
func (t *Token) timeoutErr(ctx context.Context, start time.Time) error {
	err := fmt.Errorf("%w: token %q, no answer after %s (the call goes on; its session will not be reused): %w",
		ErrTimeout, t.label, time.Since(start).Round(time.Millisecond), ctx.Err())
	if errors.Is(err, context.Canceled) { // the caller left: no outage
		return err
	}
	return outage.Mark(err)
}

// abandon counts c among the calls running without a caller, and among
// the timeouts when its deadline passed (timedOut): a caller that left
// (cancelled) is no token that failed to answer in time.
func (t *Token) abandon(c *call, timedOut bool) {
	t.hungMu.Lock()
	t.hung[c] = struct{}{}
	t.hungMu.Unlock()
	if t.m != nil {
		if timedOut {
			t.m.timeouts.Inc()
		}
		t.m.outstanding.Inc()
	}
	close(c.counted)
	t.log.Warn("hsm call abandoned: the token did not answer before the deadline", "running", time.Since(c.start).Round(time.Millisecond))
}

// returned forgets abandoned call c, which has now returned err.
func (t *Token) returned(c *call, err error) {
	t.hungMu.Lock()
	delete(t.hung, c)
	left := len(t.hung)
	t.hungMu.Unlock()
	if t.m != nil {
		t.m.outstanding.Dec()
	}
	t.log.Warn("hsm call abandoned by its caller has returned; its session is not reused",
		"after", time.Since(c.start).Round(time.Millisecond), "error", err, "still_outstanding", left)
}

// hungErr says why the token should not get traffic now: calls abandoned
// and still running hold every pooled session, or some have been running
// for longer than the call timeout. Nil when neither.
func (t *Token) hungErr() error {
	t.hungMu.Lock()
	defer t.hungMu.Unlock()
	n, late := len(t.hung), 0
	var oldest time.Duration
	for c := range t.hung {
		age := time.Since(c.start)
		if age > t.callTimeout {
			late++
		}
		oldest = max(oldest, age)
	}
	switch {
	case n >= t.pool.size():
		return fmt.Errorf("%w: no session of token %q is usable: all %d are held by calls that have not returned (the oldest for %s)",
			ErrTimeout, t.label, n, oldest.Round(time.Second))
	case late > 0:
		return fmt.Errorf("%w: %d call(s) to token %q have not returned for more than %s (the oldest for %s); their sessions are out of use",
			ErrTimeout, late, t.label, t.callTimeout, oldest.Round(time.Second))
	}
	return nil
}

// recoverBounded runs recover for the caller until ctx ends; a recovery
// that outlives it goes on (the next operation finds it done, or waits).
func (t *Token) recoverBounded(ctx context.Context, seen uint64, reason string, cause error) error {
	if ctx.Done() == nil {
		return t.recover(seen, reason, cause)
	}
	start := time.Now()
	done := make(chan error, 1)
	go func() { done <- t.recover(seen, reason, cause) }()
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
		return fmt.Errorf("waiting for the recovery: %w", t.timeoutErr(ctx, start))
	}
}
