package store_test

import (
	"bytes"
	"sync"
	"testing"
	"time"

	"github.com/thiqa/thiqa/store"
	"github.com/thiqa/thiqa/store/storetest"
	"github.com/thiqa/thiqa/timestamp"
)

// TestTSAUnitRenewals: of two instances (two connections) claiming one
// unit's renewal at once, exactly one gets it; a live claim is refused to
// others, a released or lapsed one is taken over; only the holder records
// the new unit, which every later claim then gets, on both dialects.
func TestTSAUnitRenewals(t *testing.T) {
	for _, d := range storetest.Dialects() {
		t.Run(d.Name, func(t *testing.T) {
			cfg := d.NewConfig(t)
			a, b := storetest.Open(t, cfg).TSAUnitRenewals(), storetest.Open(t, cfg).TSAUnitRenewals()
			ctx, now := t.Context(), time.Unix(1_800_000_000, 0)
			until := now.Add(5 * time.Minute)

			var wg sync.WaitGroup
			got := make([]timestamp.RenewalClaim, 2)
			for i, r := range []*store.TSAUnitRenewals{a, b} {
				wg.Go(func() {
					c, err := r.ClaimRenewal(ctx, "01ab", []string{"node-a", "node-b"}[i], now, until)
					if err != nil {
						t.Error(err)
					}
					got[i] = c
				})
			}
			wg.Wait()
			if got[0].Claimed == got[1].Claimed || got[0].Next != nil || got[1].Next != nil {
				t.Fatalf("two claims at once: %+v, %+v; want exactly one granted", got[0], got[1])
			}
			winner, loser, wr, lr := "node-a", "node-b", a, b
			if got[1].Claimed {
				winner, loser, wr, lr = loser, winner, b, a
			}
			if c, err := wr.ClaimRenewal(ctx, "01ab", winner, now.Add(time.Minute), until); err != nil || !c.Claimed {
				t.Fatalf("the holder's claim again: %+v %v", c, err)
			}
			if c, err := lr.ClaimRenewal(ctx, "01ab", loser, now.Add(time.Minute), until); err != nil || c.Claimed || c.Next != nil {
				t.Fatalf("a claim while another is live: %+v %v", c, err)
			}
			if err := lr.CompleteRenewal(ctx, "01ab", loser, timestamp.RenewedUnit{KeyLabel: "k", Cert: []byte{1}, Chain: []byte{2}}); err == nil {
				t.Fatal("a renewal recorded by an instance not holding the claim")
			}
			// Released: anyone may claim at once.
			if err := wr.ReleaseRenewal(ctx, "01ab", winner); err != nil {
				t.Fatal(err)
			}
			if c, err := lr.ClaimRenewal(ctx, "01ab", loser, now.Add(time.Minute), until); err != nil || !c.Claimed {
				t.Fatalf("a claim after release: %+v %v", c, err)
			}
			// Lapsed (its holder died): taken over.
			if c, err := wr.ClaimRenewal(ctx, "01ab", winner, until, until.Add(5*time.Minute)); err != nil || !c.Claimed {
				t.Fatalf("a claim after the other lapsed: %+v %v", c, err)
			}
			next := timestamp.RenewedUnit{KeyLabel: "tsa-unit-x", Cert: []byte{0x30, 1}, Chain: []byte{0x30, 2, 0x30, 3}}
			if err := wr.CompleteRenewal(ctx, "01ab", winner, next); err != nil {
				t.Fatal(err)
			}
			if err := wr.CompleteRenewal(ctx, "01ab", winner, next); err == nil {
				t.Fatal("a renewal recorded twice")
			}
			for _, r := range []*store.TSAUnitRenewals{a, b} {
				c, err := r.ClaimRenewal(ctx, "01ab", loser, until.Add(time.Hour), until.Add(2*time.Hour))
				if err != nil || c.Claimed || c.Next == nil || c.Next.KeyLabel != next.KeyLabel || !bytes.Equal(c.Next.Cert, next.Cert) || !bytes.Equal(c.Next.Chain, next.Chain) {
					t.Fatalf("a claim after the renewal: %+v %v", c, err)
				}
			}
			// Released after completion: the record stays.
			if err := wr.ReleaseRenewal(ctx, "01ab", winner); err != nil {
				t.Fatal(err)
			}
			if c, err := a.ClaimRenewal(ctx, "01ab", "node-c", until.Add(time.Hour), until.Add(2*time.Hour)); err != nil || c.Next == nil {
				t.Fatalf("the recorded renewal after a release: %+v %v", c, err)
			}
			// Another unit is another claim.
			if c, err := b.ClaimRenewal(ctx, "02cd", loser, now, until); err != nil || !c.Claimed {
				t.Fatalf("another unit's claim: %+v %v", c, err)
			}
		})
	}
}
