package hsm

import (
	"context"
	"fmt"
	"sync/atomic"

	"github.com/miekg/pkcs11"
)

// session is one PKCS#11 session lent to one operation at a time. gen is the
// Token generation it was opened in: after a recovery, sessions of older
// generations are dropped, never reused and never closed by handle (the
// module may already have given the same handle number to a new session).
type session struct {
	h   pkcs11.SessionHandle
	gen uint64

	// copies are the session-object copies of private keys made in this
	// session, by token object handle (sessioncopy.go); copyEpoch is the
	// token's copyEpoch when they were last checked against deletions.
	copies    map[pkcs11.ObjectHandle]*sessionCopy
	copyEpoch uint64
	copyClock uint64 // counts signatures with copies, for LRU eviction
}

// pool bounds the sessions in use (a semaphore) and keeps idle ones for
// reuse. Total live sessions of the current generation never exceed the
// bound: a session is opened only by an operation holding a slot when no
// idle one is left.
type pool struct {
	sem   chan struct{}
	idle  chan *session
	inUse atomic.Int64
	peak  atomic.Int64 // highest inUse seen (tests)
	waits atomic.Int64
}

func newPool(size int) *pool {
	return &pool{sem: make(chan struct{}, size), idle: make(chan *session, size)}
}

// size is the pool bound.
func (p *pool) size() int { return cap(p.sem) }

// enter takes a slot, waiting with ctx when all are taken.
func (p *pool) enter(ctx context.Context, m *metrics) error {
	select {
	case p.sem <- struct{}{}:
	default:
		p.waits.Add(1)
		if m != nil {
			m.waits.Inc()
		}
		select {
		case p.sem <- struct{}{}:
		case <-ctx.Done():
			return fmt.Errorf("hsm: waiting for a free session (%d in use): %w", p.size(), ctx.Err())
		}
	}
	n := p.inUse.Add(1)
	for {
		pk := p.peak.Load()
		if n <= pk || p.peak.CompareAndSwap(pk, n) {
			break
		}
	}
	if m != nil {
		m.inUse.Inc()
	}
	return nil
}

// leave gives the slot back.
func (p *pool) leave(m *metrics) {
	p.inUse.Add(-1)
	if m != nil {
		m.inUse.Dec()
	}
	<-p.sem
}

// takeIdle returns an idle session, if any.
func (p *pool) takeIdle() (*session, bool) {
	select {
	case s := <-p.idle:
		return s, true
	default:
		return nil, false
	}
}

// put returns a healthy session for reuse.
func (p *pool) put(s *session) {
	select {
	case p.idle <- s:
	default: // cannot happen while the bound holds; never block
	}
}

// session returns an idle session of generation gen or opens one. The
// caller holds t.rw for reading and a pool slot.
func (t *Token) session(gen uint64) (*session, error) {
	for {
		s, ok := t.pool.takeIdle()
		if !ok {
			break
		}
		if s.gen == gen {
			return s, nil
		}
		// Stale: closed by the recovery that bumped the generation.
	}
	h, err := t.p.OpenSession(t.slot, pkcs11.CKF_SERIAL_SESSION|pkcs11.CKF_RW_SESSION)
	if err != nil {
		return nil, fmt.Errorf("hsm: opening a session on token %q: %w", t.label, err)
	}
	t.opened.Add(1)
	return &session{h: h, gen: gen}, nil
}
