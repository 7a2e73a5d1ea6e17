package ceremony

import (
	"testing"
	"time"
)

// TestLifetime: years are calendar years, days and durations exact, the
// end inclusive; what is not positive is refused.
func TestLifetime(t *testing.T) {
	start := time.Date(2026, 2, 28, 12, 0, 0, 0, time.UTC)
	for in, want := range map[string]time.Time{
		"25y": time.Date(2051, 2, 28, 11, 59, 59, 0, time.UTC),
		"90d": start.Add(90*24*time.Hour - time.Second),
		"36h": start.Add(36*time.Hour - time.Second),
	} {
		l, err := ParseLifetime(in)
		if err != nil || !l.End(start).Equal(want) {
			t.Errorf("%s: %v %v, want %v", in, l.End(start), err, want)
		}
	}
	for _, bad := range []string{"0y", "101y", "-3d", "0d", "1x", "-1h", ""} {
		if _, err := ParseLifetime(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}
