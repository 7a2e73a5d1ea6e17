package inflight

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// TestLimiter: max slots per key, other keys unaffected, a waiter gets a
// slot given back within its wait, and no slot is lost or leaked.
func TestLimiter(t *testing.T) {
	l, err := New(2, 2*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	r1, err1 := l.Acquire(ctx, "a")
	r2, err2 := l.Acquire(ctx, "a")
	if err1 != nil || err2 != nil {
		t.Fatal(err1, err2)
	}
	rb, err := l.Acquire(ctx, "b")
	if err != nil {
		t.Fatalf("another key waits for the first one's slots: %v", err)
	}
	rb()
	rb() // a second call gives back nothing more
	got := make(chan error, 1)
	go func() {
		r, err := l.Acquire(ctx, "a")
		if err == nil {
			r()
		}
		got <- err
	}()
	time.Sleep(50 * time.Millisecond)
	select {
	case err := <-got:
		t.Fatalf("a third slot of key a: %v", err)
	default:
	}
	r1()
	if err := <-got; err != nil {
		t.Fatalf("the waiter did not get the slot given back: %v", err)
	}
	r2()
	if n := l.InFlight(); n != 0 {
		t.Fatalf("%d slots held after all were given back", n)
	}
	if len(l.keys) != 0 {
		t.Fatalf("idle keys kept: %v", l.keys)
	}
}

// TestLimiterRefuses: without a free slot, ErrBusy after the wait (at once
// without one), or the context's error when it ends first.
func TestLimiterRefuses(t *testing.T) {
	for _, wait := range []time.Duration{0, 100 * time.Millisecond} {
		l, _ := New(1, wait)
		r, _ := l.Acquire(context.Background(), "k")
		start := time.Now()
		if _, err := l.Acquire(context.Background(), "k"); !errors.Is(err, ErrBusy) {
			t.Fatalf("wait %s: %v, want ErrBusy", wait, err)
		}
		if el := time.Since(start); el < wait || el > wait+time.Second {
			t.Fatalf("wait %s: refused after %s", wait, el)
		}
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		if _, err := l.Acquire(ctx, "k"); wait > 0 && !errors.Is(err, context.Canceled) {
			t.Fatalf("wait %s, ended context: %v", wait, err)
		}
		r()
		if len(l.keys) != 0 || l.InFlight() != 0 {
			t.Fatalf("wait %s: state left behind: %v %d", wait, l.keys, l.InFlight())
		}
	}
	if _, err := New(0, time.Second); err == nil {
		t.Fatal("a limiter of no slots")
	}
	if _, err := New(1, -time.Second); err == nil {
		t.Fatal("a negative wait")
	}
}

// TestLimiterConcurrent: many goroutines never hold more than max slots.
func TestLimiterConcurrent(t *testing.T) {
	l, _ := New(3, time.Minute)
	var cur, peak atomic.Int32
	var wg sync.WaitGroup
	for range 50 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r, err := l.Acquire(context.Background(), "k")
			if err != nil {
				t.Error(err)
				return
			}
			n := cur.Add(1)
			for {
				p := peak.Load()
				if n <= p || peak.CompareAndSwap(p, n) {
					break
				}
			}
			time.Sleep(time.Millisecond)
			cur.Add(-1)
			r()
		}()
	}
	wg.Wait()
	if p := peak.Load(); p > 3 || p < 1 {
		t.Fatalf("peak %d slots in use, max 3", p)
	}
	if l.InFlight() != 0 || len(l.keys) != 0 {
		t.Fatalf("state left behind: %d %v", l.InFlight(), l.keys)
	}
}
