package tsl

import (
	"context"
	"crypto/x509"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/thiqa/thiqa/verify/report"
)

// Live holds the current Trust of a long-running verifier and lets a
// refresh swap it without stopping validations. Its zero value holds no
// lists (nothing is an anchor, nothing is qualified).
type Live struct {
	cur atomic.Pointer[Trust]
}

// Set replaces the current lists.
func (l *Live) Set(t *Trust) { l.cur.Store(t) }

// Current returns the current lists (nil before the first Set).
func (l *Live) Current() *Trust { return l.cur.Load() }

// AnchorsFor implements verify.TrustedLists with the current lists.
func (l *Live) AnchorsFor(u Usage, certs []*x509.Certificate) []*x509.Certificate {
	return l.cur.Load().AnchorsFor(u, certs)
}

// Qualify implements verify.TrustedLists with the current lists.
func (l *Live) Qualify(u Usage, chain []*x509.Certificate, at time.Time) Verdict {
	t := l.cur.Load()
	if t == nil {
		return Verdict{Detail: &report.Qualification{Status: report.QualificationUnknown, Reason: "the trusted lists are not loaded yet"}}
	}
	return t.Qualify(u, chain, at)
}

// Reload replaces the current lists with what load returns, logging its
// warnings and what was loaded; a failure is logged and keeps the lists
// held (a verifier says "unknown" until a load succeeds).
func (l *Live) Reload(ctx context.Context, load func(context.Context) (*Trust, []string, error), logger *slog.Logger) {
	t, warnings, err := load(ctx)
	if err != nil {
		logger.Error("trusted lists not loaded", "error", err)
		return
	}
	for _, w := range warnings {
		logger.Warn("trusted list", "warning", w)
	}
	if t != nil {
		l.Set(t)
		logger.Info("trusted lists loaded", "lists", len(t.Lists()), "services", t.ServiceCount())
	}
}

// Refresh reloads the lists (Reload) every period until ctx is done.
func (l *Live) Refresh(ctx context.Context, every time.Duration, load func(context.Context) (*Trust, []string, error), logger *slog.Logger) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			l.Reload(ctx, load, logger)
		}
	}
}
