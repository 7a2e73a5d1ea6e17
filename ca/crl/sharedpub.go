package crl

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"math/big"
	"sync"
	"time"
)

// sharedMode says which CRLs a shared publication signs.
type sharedMode int

const (
	// dueOnly: the complete CRLs (and their deltas) whose stored pair is
	// due, made under other settings or missing (the schedule).
	dueOnly sharedMode = iota
	// forceComplete: every complete CRL and its delta, now (PublishCA).
	forceComplete
	// deltasOnly: every delta, relative to the stored complete CRL (a
	// revocation); the complete CRL without delta CRLs.
	deltasOnly
)

// Share makes p one of the publishers sharing st, as the nodes of a
// cluster do (see Published): from then on PublishCA, PublishDeltas and
// Run sign under the CA's lock and only what is due, and p serves what st
// holds. Call it before Run or any Publish.
func (p *Publisher) Share(st SharedStore, o ShareOptions) {
	p.shared = st
	p.syncEvery = cmp.Or(o.SyncEvery, time.Second)
	p.switchDelay = cmp.Or(o.SwitchDelay, 5*time.Second)
	p.pending = map[string]*Published{}
}

// lockName is the SharedStore lock of one CA's CRLs.
func lockName(ca string) string { return "crl:" + ca }

// dueSlack is how much earlier than regenerateEvery after its thisUpdate a
// stored complete CRL is due: the publishers' ticks drift by the time the
// lock and the CRLs before it took (and thisUpdate is whole seconds).
func dueSlack(every time.Duration) time.Duration { return every/10 + time.Second }

// publishShared signs, under ca's lock, the CRLs of ca that mode asks
// for, stores them and reads back what is stored.
func (p *Publisher) publishShared(ctx context.Context, ca string, mode sharedMode) error {
	g, ok := p.gens[ca]
	if !ok {
		return fmt.Errorf("no CRL generator for CA %q", ca)
	}
	var errs []error
	err := p.shared.Exclusive(ctx, lockName(ca), func(ctx context.Context) error {
		heads, err := p.shared.PublishedHeads(ctx, ca)
		if err != nil {
			return fmt.Errorf("reading the stored CRLs of %s: %w", ca, err)
		}
		fp := g.fingerprint()
		var due []int
		var last time.Time
		byPart := make(map[int]*Published, len(heads))
		for _, h := range heads {
			byPart[h.Partition] = h
		}
		for _, part := range g.PartitionNumbers() {
			if p.dueShared(g, byPart[part], fp, mode, p.now()) {
				due = append(due, part)
				if h := byPart[part]; h != nil && h.ServeFrom.After(last) {
					last = h.ServeFrom
				}
			}
		}
		// A pair stored but not served yet reaches every node first: a
		// node that read it must not skip it for a newer one the others
		// never saw.
		// A ServeFrom more than switchDelay ahead is a clock that stepped
		// back since it was set (or the storing node's runs ahead): the
		// wait, under the CA's lock, is switchDelay at most.
		if wait := min(last.Sub(p.now()), p.switchDelay); wait > 0 && len(due) > 0 {
			t := time.NewTimer(wait)
			select {
			case <-ctx.Done():
				t.Stop()
				return ctx.Err()
			case <-t.C:
			}
		}
		for _, part := range due {
			if err := p.signShared(ctx, g, part, byPart[part], fp, mode); err != nil {
				errs = append(errs, err)
			}
		}
		return nil
	})
	if err != nil {
		if ctx.Err() == nil { // not a shutdown
			p.failures.WithLabelValues(ca).Inc()
			p.log.ErrorContext(ctx, "CRL generation failed", "ca", ca, "err", err)
		}
		errs = append(errs, err)
	}
	if err := p.syncCA(ctx, ca); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// dueShared reports whether mode asks to sign part's CRLs at now, its
// stored pair being head (nil: none) and the generator's settings fp.
func (p *Publisher) dueShared(g *Generator, head *Published, fp string, mode sharedMode, now time.Time) bool {
	if mode != dueOnly || head == nil || head.Fingerprint != fp || (head.Delta != nil) != g.Deltas() {
		return true
	}
	if head.Complete.ThisUpdate.Sub(now) > maxHold {
		// The clock stepped back by more than maxHold: waiting for it to
		// reach the schedule of the stored CRL could outlast that CRL's
		// nextUpdate in real time. dateAfter dates the new one by the clock.
		return true
	}
	return !now.Before(head.Complete.ThisUpdate.Add(p.every - dueSlack(p.every)))
}

// signShared signs and stores what mode asks for of one partition whose
// stored pair is head (nil: none), as publish does alone: the complete CRL
// and its delta, or only the delta relative to the stored complete CRL.
func (p *Publisher) signShared(ctx context.Context, g *Generator, part int, head *Published, fp string, mode sharedMode) error {
	ca := g.Issuer()
	start := time.Now()
	now := p.now()
	complete := mode != deltasOnly || !g.Deltas() || head == nil || head.Fingerprint != fp || head.Delta == nil
	var c *CRL
	var err error
	var prevComplete, prevDelta *CRL
	if head != nil {
		prevComplete, prevDelta = head.Complete, head.Delta
	}
	if complete {
		pub := &Published{Issuer: ca, Partition: part, Fingerprint: fp}
		c, err = g.Generate(ctx, part, p.dateAfter(ctx, FileName(ca, part), prevComplete, now))
		pub.Complete = c
		if err == nil && g.Deltas() {
			p.warnRedated(ctx, c)
			c, err = g.GenerateDelta(ctx, pub.Complete, p.dateAfter(ctx, DeltaFileName(ca, part), prevDelta, p.now()))
			pub.Delta = c
		}
		if err == nil {
			pub.ServeFrom = p.now().Add(p.switchDelay)
			err = p.shared.SavePublished(ctx, pub)
		}
	} else {
		c, err = g.GenerateDelta(ctx, head.Complete, p.dateAfter(ctx, DeltaFileName(ca, part), prevDelta, now))
		if err == nil {
			err = p.shared.SaveDelta(ctx, c, p.now().Add(p.switchDelay))
		}
	}
	p.genSeconds.WithLabelValues(ca).Observe(time.Since(start).Seconds())
	if err != nil {
		p.failures.WithLabelValues(ca).Inc()
		p.log.ErrorContext(ctx, "CRL generation failed", "ca", ca, "partition", part, "err", err)
		return err
	}
	p.log.InfoContext(ctx, "CRL published", "crl", c.Name, "number", c.Number.String(), "entries", c.Entries,
		"bytes", len(c.DER), "seconds", time.Since(start).Seconds())
	p.warnRedated(ctx, c)
	if c.Entries > p.max {
		p.oversized.WithLabelValues(c.Name).Inc()
		p.log.WarnContext(ctx, "CRL partition above maxEntriesPerPartition", "crl", c.Name, "entries", c.Entries, "max", p.max)
	}
	if c.Deferred > 0 {
		p.Trigger(ca) // entries revoked during generation go on the next CRL soon
	}
	return nil
}

// pairVersion orders the pairs of one partition: by complete CRL number,
// then by delta number (none lowest).
func pairVersion(p *Published) (complete, delta *big.Int) {
	delta = big.NewInt(-1)
	if p.Delta != nil {
		delta = p.Delta.Number
	}
	return p.Complete.Number, delta
}

// comparePairs is -1, 0 or +1 as a is older than, the same as or newer than b.
func comparePairs(a, b *Published) int {
	ac, ad := pairVersion(a)
	bc, bd := pairVersion(b)
	if c := ac.Cmp(bc); c != 0 {
		return c
	}
	return ad.Cmp(bd)
}

// known is the newest pair of a partition p holds, staged or served
// (nil: none); p.mu is held.
func (p *Publisher) knownLocked(ca string, part int) *Published {
	if k := p.pending[FileName(ca, part)]; k != nil {
		return k
	}
	s, ok := p.latest[FileName(ca, part)]
	if !ok {
		return nil
	}
	k := &Published{Issuer: ca, Partition: part, Complete: s.crl}
	if d, ok := p.latest[DeltaFileName(ca, part)]; ok {
		k.Delta = d.crl
	}
	return k
}

// syncCA reads the pairs stored for ca and stages those newer than what p
// holds.
func (p *Publisher) syncCA(ctx context.Context, ca string) error {
	g := p.gens[ca]
	fp := g.fingerprint()
	heads, err := p.shared.PublishedHeads(ctx, ca)
	if err != nil {
		return fmt.Errorf("reading the stored CRLs of %s: %w", ca, err)
	}
	for _, h := range heads {
		if h.Partition > g.Partitions() {
			continue
		}
		p.mu.RLock()
		k := p.knownLocked(ca, h.Partition)
		p.mu.RUnlock()
		if k != nil && comparePairs(h, k) <= 0 {
			continue
		}
		var skip *big.Int
		if k != nil {
			skip = k.Complete.Number
		}
		full, err := p.shared.PublishedCRL(ctx, ca, h.Partition, skip)
		if err != nil {
			return fmt.Errorf("reading the stored CRL of %s partition %d: %w", ca, h.Partition, err)
		}
		if full == nil {
			continue
		}
		if full.Complete.DER == nil {
			if k == nil || k.Complete.Number.Cmp(full.Complete.Number) != 0 {
				continue // changed meanwhile: the next sync reads it
			}
			full.Complete = k.Complete
		}
		p.stage(full, fp)
	}
	p.promoteDue(p.now())
	return nil
}

// stage keeps pub to be served from its ServeFrom on, or serves it at once
// when the partition has nothing served yet (a node that starts) and pub
// was made under this node's settings fp: one made under others (delta
// CRLs turned on, say) is due, and this node signs its own first.
func (p *Publisher) stage(pub *Published, fp string) {
	name := FileName(pub.Issuer, pub.Partition)
	p.mu.Lock()
	if k := p.knownLocked(pub.Issuer, pub.Partition); k != nil && comparePairs(pub, k) <= 0 {
		p.mu.Unlock()
		return
	}
	if _, served := p.latest[name]; !served {
		if pub.Fingerprint != fp {
			p.mu.Unlock()
			return
		}
		changed := p.serveLocked(pub)
		p.mu.Unlock()
		for _, c := range changed {
			p.observe(c)
		}
		return
	}
	if latest := p.now().Add(p.switchDelay); pub.ServeFrom.After(latest) {
		// Set by a clock ahead of this one (stepped back since, or another
		// node's running ahead): served after switchDelay, as every node
		// reading it now does, not when this clock reaches it.
		pub.ServeFrom = latest
	}
	// The pair staged before this one is served now, even if nothing
	// promoted it yet or this node's clock has not reached its ServeFrom:
	// a newer pair is stored only once the one before it is served (by
	// the storing node's clock), so the other nodes serve it already.
	// Replacing it unserved would leave this node serving an older CRL
	// than the others until the newer pair's ServeFrom, seconds later.
	var changed []*CRL
	if old := p.pending[name]; old != nil {
		changed = p.serveLocked(old)
	}
	p.pending[name] = pub
	if p.nextSwitch.IsZero() || pub.ServeFrom.Before(p.nextSwitch) {
		p.nextSwitch = pub.ServeFrom
	}
	p.mu.Unlock()
	for _, c := range changed {
		p.observe(c)
	}
	p.promoteDue(p.now())
}

// serveLocked serves pub's CRLs (the partition's delta goes when pub has
// none) and returns those served; p.mu is held.
func (p *Publisher) serveLocked(pub *Published) []*CRL {
	changed := []*CRL{p.putLocked(pub.Complete)}
	if pub.Delta != nil {
		return append(changed, p.putLocked(pub.Delta))
	}
	delete(p.latest, DeltaFileName(pub.Issuer, pub.Partition)) // delta CRLs were turned off
	return changed
}

// promoteDue serves the staged pairs whose ServeFrom has come.
func (p *Publisher) promoteDue(now time.Time) {
	p.mu.RLock()
	sw := p.nextSwitch
	p.mu.RUnlock()
	if sw.IsZero() || now.Before(sw) {
		return // the common case, under the read lock only
	}
	var changed []*CRL
	p.mu.Lock()
	if p.nextSwitch.IsZero() || now.Before(p.nextSwitch) {
		p.mu.Unlock()
		return
	}
	p.nextSwitch = time.Time{}
	for name, pub := range p.pending {
		if now.Before(pub.ServeFrom) {
			if p.nextSwitch.IsZero() || pub.ServeFrom.Before(p.nextSwitch) {
				p.nextSwitch = pub.ServeFrom
			}
			continue
		}
		delete(p.pending, name)
		changed = append(changed, p.serveLocked(pub)...)
	}
	p.mu.Unlock()
	for _, c := range changed {
		p.observe(c)
	}
}

// current returns what is served under name now, serving the staged pairs
// whose time has come first.
func (p *Publisher) current(name string) (*served, bool) {
	if p.shared != nil {
		p.promoteDue(p.now())
	}
	p.mu.RLock()
	defer p.mu.RUnlock()
	s, ok := p.latest[name]
	return s, ok
}

// syncAll reads the stored CRLs of every CA, logging a failure once until
// a read succeeds again.
func (p *Publisher) syncAll(ctx context.Context) {
	var errs []error
	for ca := range p.gens {
		if err := p.syncCA(ctx, ca); err != nil {
			errs = append(errs, err)
		}
	}
	err := errors.Join(errs...)
	p.mu.Lock()
	was := p.syncFailed
	p.syncFailed = err != nil
	p.mu.Unlock()
	switch {
	case err != nil && !was && ctx.Err() == nil:
		p.log.ErrorContext(ctx, "reading the stored CRLs failed: serving the ones held", "err", err)
	case err == nil && was:
		p.log.InfoContext(ctx, "reading the stored CRLs works again")
	}
}

// startSync starts a shared publication's reading of the store: now, then
// every SyncEvery in its own goroutine (so a long signature does not hold
// it up) until ctx ends; wait waits for that goroutine.
func (p *Publisher) startSync(ctx context.Context) (wait func()) {
	p.syncAll(ctx)
	var wg sync.WaitGroup
	wg.Go(func() {
		t := time.NewTicker(p.syncEvery)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				p.syncAll(ctx)
			}
		}
	})
	return wg.Wait
}

// publishDue signs, in a shared publication, the CRLs of every CA that are
// due (failures are logged and counted).
func (p *Publisher) publishDue(ctx context.Context) {
	for ca := range p.gens {
		_ = p.publishShared(ctx, ca, dueOnly)
	}
}
