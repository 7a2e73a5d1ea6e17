package ratelimit

import (
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// TestRefusalBudgetAddress: within an address's budget every refusal is
// recorded; past it the first of each run (Past), and Undo of a record
// that could not be written makes the run's next refusal recorded.
func TestRefusalBudgetAddress(t *testing.T) {
	now := time.Unix(0, 0)
	b := NewRefusalBudget(1, 2, 100, 100, func() time.Time { return now })
	for i := range 2 {
		if v := b.Take("a"); !v.Record || v.Past || v.LeftOverall || v.Unrecorded != 0 {
			t.Fatalf("refusal %d within the budget: %+v", i+1, v)
		}
	}
	if v := b.Take("a"); !v.Record || !v.Past {
		t.Fatalf("first past the budget: %+v, want recorded and past", v)
	}
	for range 3 {
		if v := b.Take("a"); v.Record || !v.Past || v.LeftOverall {
			t.Fatalf("further past the budget: %+v, want past, not recorded", v)
		}
	}
	if v := b.Take("b"); !v.Record || v.Past {
		t.Fatalf("another address: %+v, want recorded", v)
	}
	b.Take("a").Undo() // not recorded: does nothing
	if v := b.Take("a"); v.Record {
		t.Fatalf("after Undo of an unrecorded refusal: %+v, want not recorded", v)
	}
	b.addrs.ResetStreak("a")
	v := b.Take("a")
	if !v.Record || !v.Past {
		t.Fatalf("after a new run: %+v", v)
	}
	v.Undo()
	if v := b.Take("a"); !v.Record || !v.Past {
		t.Fatalf("after Undo: %+v, want the run's next refusal recorded", v)
	}
	now = now.Add(time.Second)
	if v := b.Take("a"); !v.Record || v.Past {
		t.Fatalf("after a refill: %+v, want recorded within the budget", v)
	}
}

// TestRefusalBudgetOverall: past the overall budget refusals the
// addresses' budgets would record are left out (LeftOverall) and counted;
// the next recorded one carries the count, and Undo gives it back.
func TestRefusalBudgetOverall(t *testing.T) {
	now := time.Unix(0, 0)
	b := NewRefusalBudget(1, 1, 1, 2, func() time.Time { return now })
	for i := range 2 {
		if v := b.Take(fmt.Sprint(i)); !v.Record {
			t.Fatalf("address %d: %+v", i, v)
		}
	}
	for i := 2; i < 5; i++ {
		if v := b.Take(fmt.Sprint(i)); v.Record || !v.LeftOverall || v.Past {
			t.Fatalf("address %d past the overall budget: %+v", i, v)
		}
	}
	// The first past its address's budget is taken from the overall
	// budget (left out too); the run's next is not, nor counted in it.
	if v := b.Take("0"); v.Record || !v.LeftOverall || !v.Past {
		t.Fatalf("first past the address's budget: %+v", v)
	}
	if v := b.Take("0"); v.Record || v.LeftOverall || !v.Past {
		t.Fatalf("past the address's budget: %+v", v)
	}
	now = now.Add(time.Second)
	v := b.Take("9")
	if !v.Record || v.Unrecorded != 4 {
		t.Fatalf("after a refill: %+v, want recorded carrying 4", v)
	}
	v.Undo()
	now = now.Add(time.Second)
	if v := b.Take("8"); !v.Record || v.Unrecorded != 4 {
		t.Fatalf("after Undo: %+v, want recorded carrying 4", v)
	}
}

// TestRefusalBudgetConcurrent: many goroutines taking refusals of many
// addresses (and undoing some, as for records that could not be written)
// lose and double none: the counts the kept records carry, plus the one
// the next record carries, equal the refusals left out overall; every
// refusal is exactly one of recorded, past its address's budget and left
// out overall. Run with -race.
func TestRefusalBudgetConcurrent(t *testing.T) {
	var mu sync.Mutex
	now := time.Unix(0, 0)
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	b := NewRefusalBudget(10, 5, 100, 50, clock)
	var taken, recorded, past, left, carried atomic.Int64
	var wg sync.WaitGroup
	for g := range 16 {
		wg.Go(func() {
			for i := range 500 {
				v := b.Take(fmt.Sprint((g*7 + i) % 40))
				taken.Add(1)
				if v.Record && v.LeftOverall {
					t.Errorf("a refusal both recorded and left out: %+v", v)
				}
				switch {
				case v.Record && (v.Unrecorded > 0 || (g+i)%3 == 0) && (g+i)%2 == 0:
					v.Undo() // its record could not be written
				case v.Record:
					recorded.Add(1)
					carried.Add(v.Unrecorded)
				case v.LeftOverall:
					left.Add(1)
				case v.Past:
					past.Add(1)
				default:
					t.Errorf("a refusal neither recorded nor left out: %+v", v)
				}
				if i%20 == 0 {
					mu.Lock()
					now = now.Add(time.Millisecond)
					mu.Unlock()
				}
			}
		})
	}
	wg.Wait()
	mu.Lock()
	now = now.Add(time.Hour)
	mu.Unlock()
	v := b.Take("next")
	if !v.Record || carried.Load()+v.Unrecorded != left.Load() || left.Load() == 0 || past.Load() == 0 {
		t.Fatalf("after the run: %+v, carried %d + next %d, want %d left out overall (%d past)", v.Record, carried.Load(), v.Unrecorded, left.Load(), past.Load())
	}
	if recorded.Load() == 0 || taken.Load() != 16*500 {
		t.Fatalf("recorded %d of %d", recorded.Load(), taken.Load())
	}
}
