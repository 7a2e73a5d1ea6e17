package timestamp

import "time"

// SetRevokedRetry sets how long RenewLoop first waits before it tries
// again to renew a revoked unit after a failure (tests: milliseconds).
// Call it before RenewLoop starts.
func SetRevokedRetry(s *Service, d time.Duration) { s.revokedRetry = d }

// SetClockSettle sets how long the clock must hold in sync before s
// records its return (tests: milliseconds).
func SetClockSettle(s *Service, d time.Duration) { s.o.Clock.(*auditedClock).settle = d }
