// Package inflight bounds how many requests are in progress at once, per
// key (a client IP, or one key for a whole server): a request takes a slot
// before its work and gives it back after; with none free it waits a
// little for one, then is refused. The public verification endpoint uses
// it, next to internal/ratelimit, which bounds how often a client may
// start a request but not how many it keeps running.
package inflight

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"
)

// ErrBusy is returned by Acquire when no slot came free in time.
var ErrBusy = errors.New("inflight: no free slot")

// Limiter allows at most max slots held at once for each key. Keys
// without a held slot or a waiter cost no memory, so its size is bounded
// by the requests in progress. It is safe for concurrent use.
type Limiter struct {
	max  int
	wait time.Duration

	mu    sync.Mutex
	keys  map[string]*entry
	total int
}

// entry is one key's slots and its waiters.
type entry struct {
	held, waiting int
	// freed is closed (and replaced) when one of the key's slots is
	// given back while someone waits.
	freed chan struct{}
}

// New returns a limiter of max slots per key (at least 1); a request that
// finds none free waits up to wait for one.
func New(max int, wait time.Duration) (*Limiter, error) {
	if max < 1 {
		return nil, fmt.Errorf("inflight: want at least one slot per key, got %d", max)
	}
	if wait < 0 {
		return nil, fmt.Errorf("inflight: negative wait %s", wait)
	}
	return &Limiter{max: max, wait: wait, keys: map[string]*entry{}}, nil
}

// Max is the number of slots per key.
func (l *Limiter) Max() int { return l.max }

// InFlight is the number of slots held over all keys.
func (l *Limiter) InFlight() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.total
}

// Acquire takes one of key's slots, waiting up to the limiter's wait for
// one to come free. It returns the function that gives the slot back
// (call it exactly once; later calls do nothing), or ErrBusy, or ctx's
// error when ctx ends first.
func (l *Limiter) Acquire(ctx context.Context, key string) (release func(), err error) {
	var timeout <-chan time.Time
	l.mu.Lock()
	for {
		e := l.keys[key]
		if e == nil {
			e = &entry{}
			l.keys[key] = e
		}
		if e.held < l.max {
			e.held++
			l.total++
			l.mu.Unlock()
			var once sync.Once
			return func() { once.Do(func() { l.release(key) }) }, nil
		}
		if timeout == nil {
			if l.wait == 0 {
				l.mu.Unlock()
				return nil, ErrBusy
			}
			t := time.NewTimer(l.wait)
			defer t.Stop()
			timeout = t.C
		}
		if e.freed == nil {
			e.freed = make(chan struct{})
		}
		freed := e.freed
		e.waiting++
		l.mu.Unlock()
		select {
		case <-freed:
			l.mu.Lock()
			e.waiting--
			// The entry stays in the map while it has a waiter or a
			// holder, so e is still l.keys[key]; loop to take the slot.
		case <-timeout:
			l.giveUp(key, e)
			return nil, ErrBusy
		case <-ctx.Done():
			l.giveUp(key, e)
			return nil, ctx.Err()
		}
	}
}

// giveUp removes a waiter that stopped waiting.
func (l *Limiter) giveUp(key string, e *entry) {
	l.mu.Lock()
	defer l.mu.Unlock()
	e.waiting--
	l.forgetIdle(key, e)
}

// release gives one of key's slots back and wakes its waiters.
func (l *Limiter) release(key string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	e := l.keys[key]
	e.held--
	l.total--
	if e.freed != nil {
		close(e.freed)
		e.freed = nil
	}
	l.forgetIdle(key, e)
}

// forgetIdle drops e when nothing holds or waits for its slots.
func (l *Limiter) forgetIdle(key string, e *entry) {
	if e.held == 0 && e.waiting == 0 {
		delete(l.keys, key)
	}
}
