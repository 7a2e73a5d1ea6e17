package crl

import (
	"bytes"
	"context"
	"crypto/x509"
	"encoding/asn1"
	"errors"
	"fmt"
	"math/big"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// memShared is an in-memory SharedStore: one pair per partition and one
// mutex per lock name, as the database keeps them for the nodes.
type memShared struct {
	mu    sync.Mutex
	locks map[string]*sync.Mutex
	pairs map[string]*Published // by issuer/partition
	saves atomic.Int64
}

func newMemShared() *memShared {
	return &memShared{locks: map[string]*sync.Mutex{}, pairs: map[string]*Published{}}
}

func pairKey(issuer string, part int) string { return fmt.Sprintf("%s/%d", issuer, part) }

func (m *memShared) Exclusive(ctx context.Context, name string, fn func(context.Context) error) error {
	m.mu.Lock()
	l, ok := m.locks[name]
	if !ok {
		l = &sync.Mutex{}
		m.locks[name] = l
	}
	m.mu.Unlock()
	l.Lock()
	defer l.Unlock()
	return fn(ctx)
}

func copyCRL(c *CRL, withDER bool) *CRL {
	if c == nil {
		return nil
	}
	out := *c
	if !withDER {
		out.DER = nil
	}
	return &out
}

func copyPair(p *Published, completeDER, deltaDER bool) *Published {
	out := *p
	out.Complete, out.Delta = copyCRL(p.Complete, completeDER), copyCRL(p.Delta, deltaDER)
	return &out
}

func (m *memShared) PublishedHeads(_ context.Context, issuer string) ([]*Published, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []*Published
	for _, p := range m.pairs {
		if p.Issuer == issuer {
			out = append(out, copyPair(p, false, false))
		}
	}
	return out, nil
}

func (m *memShared) PublishedCRL(_ context.Context, issuer string, part int, skip *big.Int) (*Published, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	p, ok := m.pairs[pairKey(issuer, part)]
	if !ok {
		return nil, nil
	}
	return copyPair(p, skip == nil || skip.Cmp(p.Complete.Number) != 0, true), nil
}

func (m *memShared) SavePublished(_ context.Context, p *Published) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	k := pairKey(p.Issuer, p.Partition)
	if old, ok := m.pairs[k]; ok && comparePairs(p, old) <= 0 {
		return ErrNotNewer
	}
	m.pairs[k] = copyPair(p, true, true)
	m.saves.Add(1)
	return nil
}

func (m *memShared) SaveDelta(_ context.Context, d *CRL, serveFrom time.Time) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	old, ok := m.pairs[pairKey(d.Issuer, d.Partition)]
	if !ok || old.Complete.Number.Cmp(d.BaseNumber) != 0 || (old.Delta != nil && old.Delta.Number.Cmp(d.Number) >= 0) {
		return ErrNotNewer
	}
	old.Delta, old.ServeFrom = copyCRL(d, true), serveFrom
	m.saves.Add(1)
	return nil
}

// testClock is a clock the test moves.
type testClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *testClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *testClock) add(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

// node is one of the publishers sharing a store, as one `thiqa serve`
// node runs it; numbers counts the CRLs it signed.
type node struct {
	p       *Publisher
	numbers *nodeNumbers
}

// nodeNumbers counts the CRL numbers one node takes from the CA's one
// sequence.
type nodeNumbers struct {
	seq *memNumbers
	n   atomic.Int64
}

func (c *nodeNumbers) NextCRLNumber(ctx context.Context, issuer string) (*big.Int, error) {
	c.n.Add(1)
	return c.seq.NextCRLNumber(ctx, issuer)
}

// sharedNodes builds n publishers over one issuing CA (same key, one CRL
// number sequence, one revocation source), sharing st.
func sharedNodes(t *testing.T, set Settings, st SharedStore, src RevokedSource, clock *testClock, n int) []node {
	t.Helper()
	h := newHierarchy(t)
	seq := &memNumbers{}
	var out []node
	for range n {
		nums := &nodeNumbers{seq: seq}
		g, err := NewGenerator(set, Issuer{Name: "citizen", Cert: h.ca, Signer: h.caKey}, nums, src)
		if err != nil {
			t.Fatal(err)
		}
		p, err := NewPublisher(set, nil, prometheus.NewRegistry(), g)
		if err != nil {
			t.Fatal(err)
		}
		p.now = clock.Now
		p.Share(st, ShareOptions{SyncEvery: time.Hour, SwitchDelay: 5 * time.Second})
		out = append(out, node{p: p, numbers: nums})
	}
	return out
}

func signed(nodes []node) int64 {
	var n int64
	for _, nd := range nodes {
		n += nd.numbers.n.Load()
	}
	return n
}

// servedDER returns the DER a node serves under name (nil: none).
func servedDER(t *testing.T, p *Publisher, name string) []byte {
	t.Helper()
	c, ok := p.Latest(name)
	if !ok {
		return nil
	}
	return c.DER
}

// deltaBase parses a delta CRL and returns its number and BaseCRLNumber.
func deltaBase(t *testing.T, der []byte) (number, base *big.Int) {
	t.Helper()
	rl, err := x509.ParseRevocationList(der)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range rl.Extensions {
		if e.Id.Equal(oidDeltaCRLIndicator) {
			base = new(big.Int)
			if _, err := asn1.Unmarshal(e.Value, &base); err != nil {
				t.Fatal(err)
			}
		}
	}
	if base == nil {
		t.Fatal("no deltaCRLIndicator")
	}
	return rl.Number, base
}

// sameEverywhere checks that every node serves the same complete CRL and
// delta, and that the delta applies to the complete CRL (RFC 5280 §5.2.4:
// base <= complete number < delta number).
func sameEverywhere(t *testing.T, nodes []node) (complete, delta []byte) {
	t.Helper()
	complete, delta = servedDER(t, nodes[0].p, "citizen.crl"), servedDER(t, nodes[0].p, "citizen-delta.crl")
	for i, nd := range nodes[1:] {
		if !bytes.Equal(servedDER(t, nd.p, "citizen.crl"), complete) || !bytes.Equal(servedDER(t, nd.p, "citizen-delta.crl"), delta) {
			t.Fatalf("node %d serves other CRLs than node 0", i+1)
		}
	}
	if complete == nil || delta == nil {
		t.Fatal("nothing served")
	}
	rl, err := x509.ParseRevocationList(complete)
	if err != nil {
		t.Fatal(err)
	}
	dn, base := deltaBase(t, delta)
	if base.Cmp(rl.Number) > 0 || rl.Number.Cmp(dn) >= 0 {
		t.Fatalf("delta %v (base %v) does not apply to complete CRL %v", dn, base, rl.Number)
	}
	return complete, delta
}

func TestSharedPublishersSignOncePerPeriodAndServeTheSame(t *testing.T) {
	set := deltaSettings(t)
	clock := &testClock{now: time.Now()}
	st := newMemShared()
	src := &memRecent{}
	nodes := sharedNodes(t, set, st, src, clock, 3)
	ctx := context.Background()

	// Three nodes start: the first signs, the others find it fresh.
	for _, nd := range nodes {
		if err := nd.p.publishShared(ctx, "citizen", dueOnly); err != nil {
			t.Fatal(err)
		}
	}
	if n := signed(nodes); n != 2 {
		t.Fatalf("%d CRLs signed by three starting nodes, want 2 (one complete, one delta)", n)
	}
	c1, _ := sameEverywhere(t, nodes)

	// Each node's tick within the period signs nothing.
	clock.add(set.RegenerateEvery / 2)
	for _, nd := range nodes {
		if err := nd.p.publishShared(ctx, "citizen", dueOnly); err != nil {
			t.Fatal(err)
		}
	}
	if n := signed(nodes); n != 2 {
		t.Fatalf("%d CRLs signed before the period ended, want 2", n)
	}

	// The period ends: the first node to tick signs; the others, ticking
	// at other moments of the period, do not.
	clock.add(set.RegenerateEvery / 2)
	for i, nd := range nodes {
		if err := nd.p.publishShared(ctx, "citizen", dueOnly); err != nil {
			t.Fatal(err)
		}
		if i == 0 {
			// Stored, not served yet: every node still serves the old pair.
			sameEverywhere(t, nodes)
			if !bytes.Equal(servedDER(t, nd.p, "citizen.crl"), c1) {
				t.Fatal("the signer switched before the pair's ServeFrom")
			}
		}
		clock.add(5 * time.Second) // past ServeFrom: a node never waits
	}
	if n := signed(nodes); n != 4 {
		t.Fatalf("%d CRLs signed after one period, want 4", n)
	}
	for _, nd := range nodes {
		if err := nd.p.syncCA(ctx, "citizen"); err != nil {
			t.Fatal(err)
		}
	}
	c2, _ := sameEverywhere(t, nodes)
	if bytes.Equal(c1, c2) {
		t.Fatal("the nodes did not switch to the new complete CRL")
	}

	// A revocation triggers every node (its own API, the others' polls):
	// each signs a delta relative to the stored complete CRL, and all
	// serve the newest delta, which applies to the complete CRL served.
	src.add(0x77, clock.Now().Add(-time.Second), ReasonKeyCompromise)
	for _, nd := range nodes {
		if err := nd.p.publishShared(ctx, "citizen", deltasOnly); err != nil {
			t.Fatal(err)
		}
		clock.add(6 * time.Second) // past the ServeFrom of the one before
	}
	for _, nd := range nodes {
		if err := nd.p.syncCA(ctx, "citizen"); err != nil {
			t.Fatal(err)
		}
	}
	c3, d3 := sameEverywhere(t, nodes)
	if !bytes.Equal(c2, c3) {
		t.Fatal("a revocation replaced the complete CRL (a base must stay put)")
	}
	rl, _ := x509.ParseRevocationList(d3)
	if len(rl.RevokedCertificateEntries) != 1 || rl.RevokedCertificateEntries[0].SerialNumber.Int64() != 0x77 {
		t.Fatalf("delta lists %v", rl.RevokedCertificateEntries)
	}
}

// TestSharedPublisherNeverServesAnOlderPair: a node never goes back to a
// lower-numbered CRL, and waits for a stored pair's ServeFrom.
func TestSharedPublisherNeverServesAnOlderPair(t *testing.T) {
	set := deltaSettings(t)
	clock := &testClock{now: time.Now()}
	st := newMemShared()
	nodes := sharedNodes(t, set, st, &memRecent{}, clock, 2)
	ctx := context.Background()
	if err := nodes[0].p.PublishCA(ctx, "citizen"); err != nil {
		t.Fatal(err)
	}
	if err := nodes[1].p.syncCA(ctx, "citizen"); err != nil {
		t.Fatal(err)
	}
	old := copyPair(st.pairs[pairKey("citizen", 0)], true, true)
	clock.add(10 * time.Second)
	if err := nodes[0].p.PublishCA(ctx, "citizen"); err != nil {
		t.Fatal(err)
	}
	newer := st.pairs[pairKey("citizen", 0)]
	if err := st.SavePublished(ctx, old); !errors.Is(err, ErrNotNewer) {
		t.Fatalf("saving an older pair: %v, want ErrNotNewer", err)
	}
	// A pair that is older than the one held is never staged.
	nodes[1].p.stage(copyPair(old, true, true), old.Fingerprint)
	if err := nodes[1].p.syncCA(ctx, "citizen"); err != nil {
		t.Fatal(err)
	}
	if c, _ := nodes[1].p.Latest("citizen.crl"); c.Number.Cmp(old.Complete.Number) != 0 {
		t.Fatalf("node 1 serves %v before the new pair's ServeFrom, want %v", c.Number, old.Complete.Number)
	}
	clock.add(5 * time.Second)
	for _, nd := range nodes {
		if c, _ := nd.p.Latest("citizen.crl"); c.Number.Cmp(newer.Complete.Number) != 0 {
			t.Fatalf("serves %v after ServeFrom, want %v", c.Number, newer.Complete.Number)
		}
	}
	nodes[1].p.stage(copyPair(old, true, true), old.Fingerprint)
	if c, _ := nodes[1].p.Latest("citizen.crl"); c.Number.Cmp(newer.Complete.Number) != 0 {
		t.Fatalf("went back to %v", c.Number)
	}
}

// TestSharedPublisherRegeneratesUnderNewSettings: a pair stored under
// other settings (another issuer certificate, deltas turned on) is
// replaced at the next tick, not served until the period ends.
func TestSharedPublisherRegeneratesUnderNewSettings(t *testing.T) {
	clock := &testClock{now: time.Now()}
	st := newMemShared()
	ctx := context.Background()
	plain := sharedNodes(t, settings(t, 1), st, &memRecent{}, clock, 1)
	if err := plain[0].p.publishShared(ctx, "citizen", dueOnly); err != nil {
		t.Fatal(err)
	}
	clock.add(5 * time.Second) // past its ServeFrom
	withDeltas := sharedNodes(t, deltaSettings(t), st, &memRecent{}, clock, 1)
	// Starting, it does not serve the pair made without deltas (its
	// complete CRL names no delta), and serves its own at once.
	if err := withDeltas[0].p.syncCA(ctx, "citizen"); err != nil {
		t.Fatal(err)
	}
	if _, ok := withDeltas[0].p.Latest("citizen.crl"); ok {
		t.Fatal("a starting node serves a CRL made under other settings")
	}
	if err := withDeltas[0].p.publishShared(ctx, "citizen", dueOnly); err != nil {
		t.Fatal(err)
	}
	if _, ok := withDeltas[0].p.Latest("citizen-delta.crl"); !ok {
		t.Fatal("the starting node does not serve the pair it signed")
	}
	if n := withDeltas[0].numbers.n.Load(); n != 2 {
		t.Fatalf("%d CRLs signed under new settings, want 2", n)
	}
	if st.pairs[pairKey("citizen", 0)].Delta == nil {
		t.Fatal("no delta stored")
	}
}

// TestSharedSignerWaitsForThePairNotServedYet: a node does not store a
// newer pair before the one stored last is served, so no node skips a
// pair the others serve.
func TestSharedSignerWaitsForThePairNotServedYet(t *testing.T) {
	st := newMemShared()
	nodes := sharedNodes(t, deltaSettings(t), st, &memRecent{}, &testClock{}, 2)
	const switchDelay = 300 * time.Millisecond
	for _, nd := range nodes {
		nd.p.now, nd.p.switchDelay = time.Now, switchDelay
	}
	ctx := context.Background()
	if err := nodes[0].p.PublishCA(ctx, "citizen"); err != nil {
		t.Fatal(err)
	}
	first := st.pairs[pairKey("citizen", 0)].ServeFrom
	if err := nodes[1].p.PublishDeltas(ctx, "citizen"); err != nil {
		t.Fatal(err)
	}
	if now := time.Now(); now.Before(first) {
		t.Fatalf("a delta was stored %s before the pair before it was served", first.Sub(now))
	}
	if n := st.saves.Load(); n != 2 {
		t.Fatalf("%d saves, want 2", n)
	}
}
