package retry

import (
	"testing"
	"time"
)

func TestBackoff(t *testing.T) {
	for _, c := range []struct {
		failures int
		want     time.Duration
	}{{0, 10 * time.Second}, {1, 20 * time.Second}, {2, 40 * time.Second}, {3, 80 * time.Second}, {4, 2 * time.Minute}, {1000, 2 * time.Minute}} {
		if got := Backoff(10*time.Second, 2*time.Minute, c.failures); got != c.want {
			t.Errorf("after %d failures: %s, want %s", c.failures+1, got, c.want)
		}
	}
}
