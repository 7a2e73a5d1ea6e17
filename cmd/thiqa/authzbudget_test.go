package main

import (
	"time"

	"github.com/thiqa/thiqa/internal/ratelimit"
)

// azRefusalBurst is the part of the server's overall budget of recorded
// refusals (ratelimit.OverallBurst at once) that the matrix counts on:
// the rest is a margin for refusals it did not send itself.
const azRefusalBurst = ratelimit.OverallBurst - 10

// awaitRefusalBudget waits, before the request of a caller who does not
// authenticate, until the server's overall budget of recorded refusals
// (ratelimit.OverallBurst at once, OverallRate a second) has a token for
// it, counting as the server's bucket does: the matrix's refusals then
// run at full speed while the burst lasts, and at OverallRate a second
// after, each one recorded.
func (f *azFixture) awaitRefusalBudget() {
	now := time.Now()
	if f.refusalsAt.IsZero() {
		f.refusals = azRefusalBurst
	} else {
		f.refusals = min(azRefusalBurst, f.refusals+now.Sub(f.refusalsAt).Seconds()*ratelimit.OverallRate)
	}
	if f.refusals < 1 {
		time.Sleep(time.Duration((1-f.refusals)/ratelimit.OverallRate*float64(time.Second)) + 10*time.Millisecond)
		f.refusals, now = 1, time.Now()
	}
	f.refusals--
	f.refusalsAt = now
}
