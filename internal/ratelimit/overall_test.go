package ratelimit

import (
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// TestOverall: past the burst refusals go unrecorded and are counted; the
// next recorded one (after a refill) carries the count, and Restore gives
// it back when that record could not be written.
func TestOverall(t *testing.T) {
	now := time.Unix(0, 0)
	o := NewOverall(1, 2, func() time.Time { return now })
	for i := range 2 {
		if ok, n := o.Take(); !ok || n != 0 {
			t.Fatalf("take %d: %v %d", i+1, ok, n)
		}
	}
	for range 3 {
		if ok, _ := o.Take(); ok {
			t.Fatal("past the burst: recorded")
		}
	}
	now = now.Add(time.Second)
	ok, n := o.Take()
	if !ok || n != 3 {
		t.Fatalf("after a refill: %v %d, want true 3", ok, n)
	}
	o.Restore(n)
	now = now.Add(time.Second)
	if ok, n := o.Take(); !ok || n != 3 {
		t.Fatalf("after Restore: %v %d, want true 3", ok, n)
	}
}

// TestOverallConcurrent: many goroutines taking (and restoring some
// counts, as for records that could not be written) lose and double no
// refusal: the counts the kept records carry, plus the one the next
// record carries, equal the refusals left unrecorded.
func TestOverallConcurrent(t *testing.T) {
	var mu sync.Mutex
	now := time.Unix(0, 0)
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	o := NewOverall(1000, 50, clock)
	var failed, carried atomic.Int64
	var wg sync.WaitGroup
	for g := range 16 {
		wg.Go(func() {
			for i := range 500 {
				ok, n := o.Take()
				switch {
				case !ok:
					failed.Add(1)
				case (g+i)%3 == 0:
					o.Restore(n) // its record could not be written
				default:
					carried.Add(n)
				}
				if i%50 == 0 && g == 0 {
					mu.Lock()
					now = now.Add(time.Millisecond)
					mu.Unlock()
				}
			}
		})
	}
	wg.Wait()
	mu.Lock()
	now = now.Add(time.Second)
	mu.Unlock()
	ok, n := o.Take()
	if !ok || n < 0 || carried.Load()+n != failed.Load() || failed.Load() == 0 {
		t.Fatalf("after the run: %v, carried %d + next %d, want %d unrecorded", ok, carried.Load(), n, failed.Load())
	}
}
