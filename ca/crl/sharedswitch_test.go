package crl

import (
	"context"
	"testing"
	"time"
)

// TestSharedPublisherServesTheStagedPairBeforeItsOwnNewer: a node that
// holds a stored pair staged, and signs a newer one right when the staged
// one's ServeFrom comes (a revocation its poll found, waiting under the
// CA's lock for that ServeFrom), serves the staged pair from its
// ServeFrom on, as every other node does, and not the older one until
// its own is due. Seen with two `thiqa serve` nodes: node B served CRL 2
// for five seconds while node A still served CRL 1, so fetches through
// the load balancer went 2, 1, 2, 1.
func TestSharedPublisherServesTheStagedPairBeforeItsOwnNewer(t *testing.T) {
	clock := &testClock{now: time.Now()}
	st := newMemShared()
	src := &memRecent{}
	nodes := sharedNodes(t, settings(t, 1), st, src, clock, 2)
	a, b := nodes[0].p, nodes[1].p
	ctx := context.Background()
	if err := a.publishShared(ctx, "citizen", dueOnly); err != nil {
		t.Fatal(err)
	}
	if err := b.syncCA(ctx, "citizen"); err != nil {
		t.Fatal(err)
	}
	clock.add(10 * time.Second)

	// B revokes and stores CRL 2; A's sync stages it.
	src.add(0x77, clock.Now().Add(-time.Second), ReasonKeyCompromise)
	if err := b.publishShared(ctx, "citizen", deltasOnly); err != nil {
		t.Fatal(err)
	}
	second := st.pairs[pairKey("citizen", 0)]
	if err := a.syncCA(ctx, "citizen"); err != nil {
		t.Fatal(err)
	}
	// CRL 2's ServeFrom comes; nothing fetched from A meanwhile. A's poll
	// finds the revocation and A signs CRL 3 at once.
	clock.now = second.ServeFrom
	if err := a.publishShared(ctx, "citizen", deltasOnly); err != nil {
		t.Fatal(err)
	}
	third := st.pairs[pairKey("citizen", 0)]
	if third.Complete.Number.Cmp(second.Complete.Number) <= 0 {
		t.Fatalf("A stored no newer CRL (%v after %v)", third.Complete.Number, second.Complete.Number)
	}
	for name, p := range map[string]*Publisher{"A": a, "B": b} {
		c, ok := p.Latest("citizen.crl")
		if !ok {
			t.Fatalf("node %s serves no CRL", name)
		}
		if c.Number.Cmp(second.Complete.Number) != 0 {
			t.Fatalf("node %s serves CRL %v at CRL %v's ServeFrom, want %v", name, c.Number, second.Complete.Number, second.Complete.Number)
		}
	}
	clock.now = third.ServeFrom
	for name, p := range map[string]*Publisher{"A": a, "B": b} {
		if err := p.syncCA(ctx, "citizen"); err != nil {
			t.Fatal(err)
		}
		if c, _ := p.Latest("citizen.crl"); c.Number.Cmp(third.Complete.Number) != 0 {
			t.Fatalf("node %s serves CRL %v at CRL %v's ServeFrom", name, c.Number, third.Complete.Number)
		}
	}
}

// TestSharedPublisherBehindServesTheStagedPairWhenANewerComes: a node
// whose clock is a second behind the others, and whose sync read a pair a
// second after it was stored, has not reached that pair's ServeFrom when
// the newer pair, signed by a node that serves the staged one already,
// arrives: it serves the staged pair then, not the older one for the
// newer pair's whole switch delay.
func TestSharedPublisherBehindServesTheStagedPairWhenANewerComes(t *testing.T) {
	clock := &testClock{now: time.Now()}
	st := newMemShared()
	src := &memRecent{}
	nodes := sharedNodes(t, settings(t, 1), st, src, clock, 2)
	a, b := nodes[0].p, nodes[1].p
	b.now = func() time.Time { return clock.Now().Add(-time.Second) }
	ctx := context.Background()
	if err := a.publishShared(ctx, "citizen", dueOnly); err != nil {
		t.Fatal(err)
	}
	if err := b.syncCA(ctx, "citizen"); err != nil {
		t.Fatal(err)
	}
	clock.add(10 * time.Second)
	src.add(0x77, clock.Now().Add(-time.Second), ReasonKeyCompromise)
	if err := a.publishShared(ctx, "citizen", deltasOnly); err != nil {
		t.Fatal(err)
	}
	second := st.pairs[pairKey("citizen", 0)]
	clock.add(time.Second) // B's sync reads it a second later, by when B's clock says it was stored
	if err := b.syncCA(ctx, "citizen"); err != nil {
		t.Fatal(err)
	}
	clock.now = second.ServeFrom // A's clock: A serves CRL 2; B's is a second short
	if c, _ := a.Latest("citizen.crl"); c.Number.Cmp(second.Complete.Number) != 0 {
		t.Fatalf("A serves CRL %v at CRL %v's ServeFrom", c.Number, second.Complete.Number)
	}
	src.add(0x78, clock.Now().Add(-time.Millisecond), ReasonKeyCompromise)
	if err := a.publishShared(ctx, "citizen", deltasOnly); err != nil {
		t.Fatal(err)
	}
	if err := b.syncCA(ctx, "citizen"); err != nil {
		t.Fatal(err)
	}
	c, ok := b.Latest("citizen.crl")
	if !ok {
		t.Fatal("B serves no CRL")
	}
	if c.Number.Cmp(second.Complete.Number) < 0 {
		t.Fatalf("B serves CRL %v once CRL %v was stored, while A serves %v", c.Number,
			st.pairs[pairKey("citizen", 0)].Complete.Number, second.Complete.Number)
	}
}
