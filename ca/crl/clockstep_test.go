package crl

import (
	"context"
	"crypto/x509"
	"math/big"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// stepPublisher is a publisher alone over one CA and its generator, both
// reading clock.
func stepPublisher(t *testing.T, src RevokedSource, clock *testClock) *Publisher {
	t.Helper()
	h := newHierarchy(t)
	set := settings(t, 1)
	g, err := NewGenerator(set, Issuer{Name: "citizen", Cert: h.ca, Signer: h.caKey}, &memNumbers{}, src)
	if err != nil {
		t.Fatal(err)
	}
	g.now = clock.Now
	p, err := NewPublisher(set, nil, prometheus.NewRegistry(), g)
	if err != nil {
		t.Fatal(err)
	}
	p.now = clock.Now
	return p
}

// listed parses c and returns its entries' revocation times by serial.
func listed(t *testing.T, c *CRL) map[int64]time.Time {
	t.Helper()
	rl, err := x509.ParseRevocationList(c.DER)
	if err != nil {
		t.Fatal(err)
	}
	if !rl.ThisUpdate.Equal(c.ThisUpdate) || !rl.NextUpdate.Equal(c.NextUpdate) {
		t.Fatalf("DER says %s/%s, CRL %s/%s", rl.ThisUpdate, rl.NextUpdate, c.ThisUpdate, c.NextUpdate)
	}
	out := map[int64]time.Time{}
	for _, e := range rl.RevokedCertificateEntries {
		if e.RevocationTime.After(rl.ThisUpdate) {
			t.Errorf("serial %v revoked at %s, after thisUpdate %s", e.SerialNumber, e.RevocationTime, rl.ThisUpdate)
		}
		out[e.SerialNumber.Int64()] = e.RevocationTime
	}
	return out
}

// A backward clock step under a running publisher: the next CRL has a
// higher number, still lists every revocation the last one listed and the
// ones recorded just before the step, and (for a step within maxHold)
// neither its thisUpdate nor its nextUpdate goes back.
func TestCRLAfterBackwardClockStep(t *testing.T) {
	for _, step := range []time.Duration{2 * time.Minute, time.Hour} {
		t.Run(step.String(), func(t *testing.T) {
			t0 := time.Now().UTC().Truncate(time.Second)
			clock := &testClock{now: t0}
			src := &memRevoked{partitions: 1, entries: []RevokedEntry{{Serial: big.NewInt(10), RevokedAt: t0.Add(-time.Minute)}}}
			p := stepPublisher(t, src, clock)
			ctx := context.Background()
			if err := p.PublishAll(ctx); err != nil {
				t.Fatal(err)
			}
			first, _ := p.Latest("citizen.crl")
			if got := listed(t, first); len(got) != 1 {
				t.Fatalf("first CRL lists %v", got)
			}
			// A revocation 10 s later, then the clock steps back.
			clock.add(10 * time.Second)
			src.entries = append(src.entries, RevokedEntry{Serial: big.NewInt(11), RevokedAt: clock.Now()})
			clock.add(5*time.Second - step)
			if err := p.PublishAll(ctx); err != nil {
				t.Fatal(err)
			}
			second, _ := p.Latest("citizen.crl")
			if second.Number.Cmp(first.Number) <= 0 {
				t.Fatalf("CRL number %v after %v", second.Number, first.Number)
			}
			got := listed(t, second)
			if _, ok := got[10]; !ok {
				t.Errorf("serial 10, on the last CRL, not listed: %v", got)
			} else if step <= maxHold && !got[10].Equal(t0.Add(-time.Minute)) {
				t.Errorf("serial 10 listed as revoked at %s, want %s", got[10], t0.Add(-time.Minute))
			}
			if _, ok := got[11]; !ok {
				t.Errorf("serial 11, revoked before the step, not listed: %v (deferred %d)", got, second.Deferred)
			}
			if second.Deferred != 0 {
				t.Errorf("%d entries deferred", second.Deferred)
			}
			if step <= maxHold {
				if second.ThisUpdate.Before(first.ThisUpdate) || second.NextUpdate.Before(first.NextUpdate) {
					t.Errorf("thisUpdate/nextUpdate %s/%s after %s/%s", second.ThisUpdate, second.NextUpdate, first.ThisUpdate, first.NextUpdate)
				}
			} else if !second.ThisUpdate.Equal(clock.Now().Truncate(time.Second)) {
				// Far behind: the clock is taken as corrected.
				t.Errorf("thisUpdate %s, want the clock's %s", second.ThisUpdate, clock.Now())
			}
		})
	}
}

// A revocation made while the CRL is built (dated after thisUpdate but not
// ahead of the clock) is still left for the next CRL.
func TestCRLDefersRevocationDuringBuild(t *testing.T) {
	h := newHierarchy(t)
	t0 := time.Now().UTC().Truncate(time.Second)
	g, _ := NewGenerator(settings(t, 1), Issuer{Name: "citizen", Cert: h.ca, Signer: h.caKey}, &memNumbers{},
		&allPartitions{{Serial: big.NewInt(5), RevokedAt: t0.Add(2 * time.Second)}})
	g.now = func() time.Time { return t0.Add(3 * time.Second) }
	c, err := g.Generate(context.Background(), 0, t0)
	if err != nil || c.Entries != 0 || c.Deferred != 1 || c.Redated != 0 {
		t.Fatalf("entry revoked during the build: %+v %v", c, err)
	}
}

// Sharing a store, nodes whose clock stepped back far behind the stored
// CRL sign a new one at once rather than wait for the clock to reach the
// stored CRL's schedule.
func TestSharedCRLDueAfterLargeBackwardStep(t *testing.T) {
	clock := &testClock{now: time.Now().UTC().Truncate(time.Second)}
	st := newMemShared()
	nodes := sharedNodes(t, settings(t, 1), st, &memRevoked{partitions: 1}, clock, 1)
	p := nodes[0].p
	ctx := context.Background()
	if err := p.PublishCA(ctx, "citizen"); err != nil {
		t.Fatal(err)
	}
	before := signed(nodes)
	clock.add(-(p.every + maxHold + time.Minute))
	p.publishDue(ctx)
	if signed(nodes) == before {
		t.Fatal("no CRL signed after the clock stepped far back")
	}
	n := signed(nodes)
	p.publishDue(ctx)
	if signed(nodes) != n {
		t.Fatal("a CRL signed again right after")
	}
}

// Sharing a store, a pair stored with a ServeFrom far ahead of a node's
// clock (the clock stepped back since) is served after switchDelay, not
// when the clock reaches it.
func TestSharedCRLServedAfterBackwardStep(t *testing.T) {
	clock := &testClock{now: time.Now().UTC().Truncate(time.Second)}
	st := newMemShared()
	nodes := sharedNodes(t, settings(t, 1), st, &memRevoked{partitions: 1}, clock, 2)
	a, b := nodes[0].p, nodes[1].p
	ctx := context.Background()
	if err := a.PublishCA(ctx, "citizen"); err != nil {
		t.Fatal(err)
	}
	clock.add(time.Minute)
	if err := b.syncCA(ctx, "citizen"); err != nil {
		t.Fatal(err)
	}
	first, _ := b.Latest("citizen.crl")
	// Node a signs a new CRL, then the clock steps back an hour.
	if err := a.PublishCA(ctx, "citizen"); err != nil {
		t.Fatal(err)
	}
	clock.add(-time.Hour)
	if err := b.syncCA(ctx, "citizen"); err != nil {
		t.Fatal(err)
	}
	clock.add(a.switchDelay)
	b.promoteDue(clock.Now())
	if c, _ := b.Latest("citizen.crl"); c == nil || first == nil || c.Number.Cmp(first.Number) <= 0 {
		t.Fatal("after the step and switchDelay the node still serves the CRL it served before")
	}
}
