// Package retry holds the waits of loops that try again after a failure.
package retry

import "time"

// Backoff is the wait after failures+1 failures in a row: first, doubled
// failures times, at most limit.
func Backoff(first, limit time.Duration, failures int) time.Duration {
	d := first
	for range failures {
		if d >= limit/2 {
			return limit
		}
		d *= 2
	}
	return min(d, limit)
}
