package ratelimit

import (
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
