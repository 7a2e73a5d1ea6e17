package identity

import (
	"context"
	"log/slog"
	"time"
)

// Purger deletes the provider's expired state: assertion IDs, ended
// logins, grants whose tokens expired (package store implements it).
type Purger interface {
	Purge(ctx context.Context, now time.Time) (int64, error)
}

// PurgeEvery purges p every interval until ctx ends; a failure is logged
// as a warning and the next tick tries again.
func PurgeEvery(ctx context.Context, p Purger, every time.Duration, logger *slog.Logger) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if _, err := p.Purge(ctx, time.Now()); err != nil {
				logger.Warn("purging expired identity state", "err", err)
			}
		}
	}
}
