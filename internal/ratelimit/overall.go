package ratelimit

import (
	"sync"
	"time"
)

// The overall budget of a service's recorded refusals, across all client
// addresses (Overall): 50 at once, then 10 a second. The budget per
// address alone let anyone with many addresses (a /48 holds 65,536 /64
// keys) write hundreds of thousands of records in a burst.
const (
	OverallBurst = 50
	OverallRate  = 10
)

// overallKey is the one key of an Overall's limiter.
const overallKey = "*"

// Overall bounds the refusals a service records in its audit log across
// all addresses, on top of the budget per address: a Limiter with one
// key. It counts the refusals past it (left unrecorded) until the next
// recorded one, which says how many. It is safe for concurrent use.
type Overall struct {
	l *Limiter

	mu         sync.Mutex
	unrecorded int64
}

// NewOverall returns an overall budget of burst recorded refusals at once
// and rate per second on average, reading the time from now.
func NewOverall(rate float64, burst int, now func() time.Time) *Overall {
	return &Overall{l: New(rate, burst, now)}
}

// Take takes one token for a refusal that the budget per address would
// record. When none is left it returns false and counts the refusal as
// unrecorded; else true and the count of refusals left unrecorded since
// the last recorded one, which the record carries (call Restore with it
// when the record cannot be written).
func (o *Overall) Take() (record bool, unrecorded int64) {
	ok, _ := o.l.Allow(overallKey)
	o.mu.Lock()
	defer o.mu.Unlock()
	if !ok {
		o.unrecorded++
		return false, 0
	}
	n := o.unrecorded
	o.unrecorded = 0
	return true, n
}

// Restore gives back the count Take returned, for a record that could not
// be written: the next recorded refusal carries it.
func (o *Overall) Restore(unrecorded int64) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.unrecorded += unrecorded
}
