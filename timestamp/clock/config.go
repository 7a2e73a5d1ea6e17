package clock

import (
	"log/slog"

	"github.com/thiqa/thiqa/timestamp"
)

// FromConfig builds the clock-discipline check the TSA configuration c
// names (clock.source): kernel reads the kernel's NTP state
// (NewCachedKernel), chrony and static are package timestamp's
// (Config.NewClockChecker), and static-out-of-sync refuses every request.
// The two static sources are logged as warnings on logger.
func FromConfig(c timestamp.Config, logger *slog.Logger) (timestamp.ClockChecker, error) {
	switch c.Clock.Source {
	case timestamp.ClockStaticOutOfSync:
		logger.Warn("TSA clock declared OUT OF SYNC (tsa.clock.source: static-out-of-sync): every time-stamp request is refused with timeNotAvailable")
		return timestamp.NewStaticChecker(false), nil
	case timestamp.ClockKernel:
		return NewCachedKernel(c.Clock, c.Accuracy)
	case timestamp.ClockStatic:
		logger.Warn("TSA CLOCK DISCIPLINE IS DISABLED (tsa.clock.source: static): the clock is declared in sync without any check. " +
			"DEVELOPMENT ONLY: EN 319 421 requires a checked clock; set tsa.clock.source to chrony or kernel in production")
	}
	return c.NewClockChecker()
}
