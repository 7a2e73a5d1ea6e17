package ceremony

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Lifetime is how long what a ceremony signs stays valid, as the operator
// gives it: whole years ("25y"), days ("90d") or a Go duration ("36h").
type Lifetime struct {
	years int
	d     time.Duration
}

// ParseLifetime reads a lifetime; it must be positive (at most 100 years).
func ParseLifetime(s string) (Lifetime, error) {
	if n, ok := strings.CutSuffix(s, "y"); ok {
		y, err := strconv.Atoi(n)
		if err != nil || y <= 0 || y > 100 {
			return Lifetime{}, fmt.Errorf("%q: want a number of years from 1 to 100, e.g. 25y", s)
		}
		return Lifetime{years: y}, nil
	}
	if n, ok := strings.CutSuffix(s, "d"); ok {
		d, err := strconv.Atoi(n)
		if err != nil || d <= 0 || d > 36600 {
			return Lifetime{}, fmt.Errorf("%q: want a positive number of days, e.g. 90d", s)
		}
		return Lifetime{d: time.Duration(d) * 24 * time.Hour}, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil || d <= 0 {
		return Lifetime{}, fmt.Errorf("%q: want years (25y), days (90d) or a duration (36h)", s)
	}
	return Lifetime{d: d}, nil
}

// End is the inclusive end of a lifetime that starts at t (a certificate's
// notAfter): whole years are calendar years.
func (l Lifetime) End(t time.Time) time.Time {
	if l.years > 0 {
		return t.AddDate(l.years, 0, 0).Add(-time.Second)
	}
	return t.Add(l.d - time.Second)
}
