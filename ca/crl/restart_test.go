package crl

import (
	"context"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// A restart of `thiqa serve` during a backward clock step: the publisher
// that follows, alone over the same memory, still keeps the thisUpdate of
// the last complete and delta CRLs the one before it published (a higher
// CRL number with an earlier thisUpdate would be set aside by relying
// parties that pick the CRL by thisUpdate).
func TestCRLAfterBackwardClockStepAcrossRestart(t *testing.T) {
	for _, deltas := range []bool{false, true} {
		name := "complete"
		if deltas {
			name = "deltas"
		}
		t.Run(name, func(t *testing.T) {
			h := newHierarchy(t)
			set := settings(t, 1)
			if deltas {
				set = deltaSettings(t)
			}
			t0 := time.Now().UTC().Truncate(time.Second)
			clock := &testClock{now: t0}
			numbers, memory, src := &memNumbers{}, newMemShared(), &memRecent{}
			start := func() *Publisher {
				g, err := NewGenerator(set, Issuer{Name: "citizen", Cert: h.ca, Signer: h.caKey}, numbers, src)
				if err != nil {
					t.Fatal(err)
				}
				g.now = clock.Now
				p, err := NewPublisher(set, nil, prometheus.NewRegistry(), g)
				if err != nil {
					t.Fatal(err)
				}
				p.now = clock.Now
				p.Remember(memory)
				return p
			}
			ctx := context.Background()
			before := start()
			if err := before.PublishAll(ctx); err != nil {
				t.Fatal(err)
			}
			first, _ := before.Latest("citizen.crl")
			firstDelta, _ := before.Latest("citizen-delta.crl")
			// The clock steps back 2 minutes and the process restarts.
			clock.add(-2 * time.Minute)
			after := start()
			if err := after.PublishAll(ctx); err != nil {
				t.Fatal(err)
			}
			second, _ := after.Latest("citizen.crl")
			if second.Number.Cmp(first.Number) <= 0 {
				t.Fatalf("CRL number %v after %v", second.Number, first.Number)
			}
			if second.ThisUpdate.Before(first.ThisUpdate) || second.NextUpdate.Before(first.NextUpdate) {
				t.Errorf("after the restart thisUpdate/nextUpdate %s/%s, before it %s/%s",
					second.ThisUpdate, second.NextUpdate, first.ThisUpdate, first.NextUpdate)
			}
			if deltas {
				// A revocation: a delta alone, after another restart.
				src.add(7, clock.Now().Add(-time.Second), ReasonKeyCompromise)
				again := start()
				if err := again.PublishDeltas(ctx, "citizen"); err != nil {
					t.Fatal(err)
				}
				d, _ := again.Latest("citizen-delta.crl")
				if d == nil || firstDelta == nil || d.ThisUpdate.Before(firstDelta.ThisUpdate) {
					t.Errorf("delta after the restart dated %v, before it %v", thisUpdate(d), thisUpdate(firstDelta))
				}
			}
			// Far behind, the clock is taken as corrected, as without a restart.
			clock.add(-time.Hour)
			late := start()
			if err := late.PublishAll(ctx); err != nil {
				t.Fatal(err)
			}
			if c, _ := late.Latest("citizen.crl"); !c.ThisUpdate.Equal(clock.Now()) {
				t.Errorf("thisUpdate %s, want the clock's %s", c.ThisUpdate, clock.Now())
			}
		})
	}
}

func thisUpdate(c *CRL) any {
	if c == nil {
		return nil
	}
	return c.ThisUpdate
}
