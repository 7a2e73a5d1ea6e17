package crl

import (
	"context"
	"errors"
	"time"
)

// Memory keeps the CRLs a publisher alone has published, so that the
// process that follows it (a restart of `thiqa serve`) knows the
// thisUpdate of the last CRL of each name: after a backward clock step the
// next CRL keeps it (dateAfter) instead of going back to a date before the
// one relying parties hold. package store implements it (on SQLite the
// published_crls table the nodes of a cluster share on PostgreSQL).
type Memory interface {
	// PublishedHeads returns the newest stored pair of each partition of
	// issuer, without their DER.
	PublishedHeads(ctx context.Context, issuer string) ([]*Published, error)
	// SavePublished stores p (complete and delta, with their DER) as its
	// partition's newest pair; a stored pair that is as new or newer is
	// kept and an error wrapping ErrNotNewer returned.
	SavePublished(ctx context.Context, p *Published) error
	// SaveDelta replaces the delta of the stored pair whose complete CRL is
	// delta's base; when the stored complete CRL is another one, or the
	// stored delta is as new or newer, it changes nothing and returns an
	// error wrapping ErrNotNewer.
	SaveDelta(ctx context.Context, delta *CRL, serveFrom time.Time) error
}

// Remember makes p, publishing alone, record every CRL it publishes in m
// and, before its first CRL of a CA, read the thisUpdate of the last ones
// recorded there. A shared publication (Share) needs none: the CRLs its
// nodes store serve the same purpose. Call it before Run or any Publish.
func (p *Publisher) Remember(m Memory) {
	p.memory = m
	p.held = map[string]time.Time{}
	p.recalled = map[string]bool{}
}

// recall reads, once per CA, the thisUpdate of the last complete and delta
// CRLs of each partition of ca recorded in the memory. A failure is logged
// and tried again at the next publication.
func (p *Publisher) recall(ctx context.Context, ca string) {
	if p.memory == nil {
		return
	}
	p.mu.RLock()
	done := p.recalled[ca]
	p.mu.RUnlock()
	if done {
		return
	}
	heads, err := p.memory.PublishedHeads(ctx, ca)
	if err != nil {
		p.log.WarnContext(ctx, "reading the last published CRLs failed: after a backward clock step the next CRL may be dated before the last one", "ca", ca, "err", err)
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, h := range heads {
		for _, c := range []*CRL{h.Complete, h.Delta} {
			if c != nil && c.ThisUpdate.After(p.held[c.Name]) {
				p.held[c.Name] = c.ThisUpdate
			}
		}
	}
	p.recalled[ca] = true
}

// remember records c, just published (with its delta when the CA has
// them, or c alone as a delta), in the memory. A failure is logged: the
// CRL is published all the same.
func (p *Publisher) remember(ctx context.Context, g *Generator, complete, delta *CRL) {
	if p.memory == nil {
		return
	}
	var err error
	if complete != nil {
		err = p.memory.SavePublished(ctx, &Published{Issuer: g.Issuer(), Partition: complete.Partition, Fingerprint: g.fingerprint(),
			Complete: complete, Delta: delta, ServeFrom: p.now()})
	} else if delta != nil {
		err = p.memory.SaveDelta(ctx, delta, p.now())
	}
	if err != nil && !errors.Is(err, ErrNotNewer) {
		p.log.WarnContext(ctx, "recording the published CRL failed: after a restart during a backward clock step the next CRL may be dated before it",
			"ca", g.Issuer(), "err", err)
	}
}

// lastThisUpdate returns the thisUpdate of the last CRL published under
// prev's name, or name when prev is nil: prev's, or the one recorded by the
// process before this one when that is later.
func (p *Publisher) lastThisUpdate(name string, prev *CRL) time.Time {
	var t time.Time
	if prev != nil {
		t = prev.ThisUpdate
	}
	p.mu.RLock()
	defer p.mu.RUnlock()
	if h := p.held[name]; h.After(t) {
		t = h
	}
	return t
}
