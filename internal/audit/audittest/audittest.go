// Package audittest helps tests check the rule that no answer leaves
// without its audit record: Gate is an audit log that fails on demand.
package audittest

import (
	"context"
	"errors"
	"sync/atomic"

	"github.com/thiqa/thiqa/internal/audit"
)

// ErrDown is what Gate.Append returns while the gate is down.
var ErrDown = errors.New("audittest: the audit log is down")

// Appender is what the services declare they append audit records to.
type Appender interface {
	Append(ctx context.Context, e audit.Entry) (audit.Record, error)
}

// Gate passes records to Log, or fails every append with ErrDown while
// Down is true. It is safe for concurrent use.
type Gate struct {
	// Log receives the records while the gate is up.
	Log Appender
	// Down makes every append fail.
	Down atomic.Bool
	// Err, when set, is what appends fail with while Down, instead of
	// ErrDown (e.g. an error marked as an outage, as the store's are when
	// the database is unreachable).
	Err error
	// Only, when set, picks the records that fail while Down (the others
	// pass); set it before Down.
	Only func(e audit.Entry) bool
}

// refuses reports whether the gate fails entries now.
func (g *Gate) refuses(entries ...audit.Entry) bool {
	if !g.Down.Load() {
		return false
	}
	if g.Only == nil {
		return true
	}
	for _, e := range entries {
		if g.Only(e) {
			return true
		}
	}
	return false
}

// New returns a gate (up) in front of log.
func New(log Appender) *Gate { return &Gate{Log: log} }

// Append implements Appender.
func (g *Gate) Append(ctx context.Context, e audit.Entry) (audit.Record, error) {
	if g.refuses(e) {
		if g.Err != nil {
			return audit.Record{}, g.Err
		}
		return audit.Record{}, ErrDown
	}
	return g.Log.Append(ctx, e)
}

// Preparer is what services that commit a change together with its audit
// records declare (*audit.Log): the store seals the records in the
// change's transaction.
type Preparer interface {
	Prepare(entries ...audit.Entry) (audit.Sealer, error)
}

// Prepare implements Preparer over Log (which must implement it): the
// Sealer it returns fails, inside the store's transaction, while the gate
// is down, as an append that fails there does.
func (g *Gate) Prepare(entries ...audit.Entry) (audit.Sealer, error) {
	p, ok := g.Log.(Preparer)
	if !ok {
		return nil, errors.New("audittest: the gate's log cannot prepare records")
	}
	seal, err := p.Prepare(entries...)
	if err != nil {
		return nil, err
	}
	return gatedSealer{g: g, Sealer: seal, entries: entries}, nil
}

// gatedSealer is Gate.Prepare's Sealer.
type gatedSealer struct {
	g *Gate
	audit.Sealer
	entries []audit.Entry
}

// Seal fails while the gate is down.
func (s gatedSealer) Seal(h audit.Head) ([]audit.Record, error) {
	if s.g.refuses(s.entries...) {
		if s.g.Err != nil {
			return nil, s.g.Err
		}
		return nil, ErrDown
	}
	return s.Sealer.Seal(h)
}
