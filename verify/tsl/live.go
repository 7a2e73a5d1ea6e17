package tsl

import (
	"crypto/x509"
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
