package store_test

import (
	"bytes"
	"sync"
	"testing"
	"time"

	"github.com/thiqa/thiqa/ca/revocation"
	"github.com/thiqa/thiqa/store/storetest"
	"github.com/thiqa/thiqa/timestamp"
)

// TestOCSPResponderRenewals: the responder renewals share renewal_claims
// with the TSA unit's, one subject per CA: of two nodes claiming at once
// exactly one gets it, a CA's claim is not another CA's nor the TSA unit's
// with the same serial, and a recorded renewal is found by its
// certificate, on both dialects.
func TestOCSPResponderRenewals(t *testing.T) {
	for _, d := range storetest.Dialects() {
		t.Run(d.Name, func(t *testing.T) {
			cfg := d.NewConfig(t)
			dbA, dbB := storetest.Open(t, cfg), storetest.Open(t, cfg)
			a, b := dbA.OCSPResponderRenewals(), dbB.OCSPResponderRenewals()
			ctx, now := t.Context(), time.Unix(1_800_000_000, 0)
			until := now.Add(5 * time.Minute)

			var wg sync.WaitGroup
			got := make([]revocation.ResponderClaim, 2)
			for i, r := range []*revocationRenewals{{a}, {b}} {
				wg.Go(func() {
					c, err := r.ClaimRenewal(ctx, "citizen", "01ab", []string{"node-a", "node-b"}[i], now, until)
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
			winner, loser := "node-a", "node-b"
			if got[1].Claimed {
				winner, loser = loser, winner
			}
			// Another CA, and the TSA unit, with the same serial: other claims.
			if c, err := b.ClaimRenewal(ctx, "organisation", "01ab", loser, now, until); err != nil || !c.Claimed {
				t.Fatalf("another CA's claim: %+v %v", c, err)
			}
			if c, err := dbB.TSAUnitRenewals().ClaimRenewal(ctx, "01ab", loser, now, until); err != nil || !c.Claimed {
				t.Fatalf("the TSA unit's claim: %+v %v", c, err)
			}
			if err := a.CompleteRenewal(ctx, "citizen", "01ab", loser, revocation.RenewedResponder{KeyLabel: "k", Cert: []byte{1}}); err == nil {
				t.Fatal("a renewal recorded by a node not holding the claim")
			}
			next := revocation.RenewedResponder{KeyLabel: "ocsp-citizen-0123456789ab", Cert: []byte{0x30, 1, 2}}
			if rec, err := a.Recorded(ctx, "citizen", next.Cert); err != nil || rec != nil {
				t.Fatalf("a renewal found before it is recorded: %+v %v", rec, err)
			}
			if err := a.CompleteRenewal(ctx, "citizen", "01ab", winner, next); err != nil {
				t.Fatal(err)
			}
			for _, r := range []*revocationRenewals{{a}, {b}} {
				c, err := r.ClaimRenewal(ctx, "citizen", "01ab", loser, until.Add(time.Hour), until.Add(2*time.Hour))
				if err != nil || c.Claimed || c.Next == nil || c.Next.KeyLabel != next.KeyLabel || !bytes.Equal(c.Next.Cert, next.Cert) {
					t.Fatalf("a claim after the renewal: %+v %v", c, err)
				}
				if rec, err := r.Recorded(ctx, "citizen", next.Cert); err != nil || rec == nil || rec.KeyLabel != next.KeyLabel {
					t.Fatalf("the recorded renewal by its certificate: %+v %v", rec, err)
				}
				if rec, err := r.Recorded(ctx, "organisation", next.Cert); err != nil || rec != nil {
					t.Fatalf("another CA's renewal by the certificate: %+v %v", rec, err)
				}
			}
			// The TSA unit's claim is untouched by the responder's renewal.
			if c, err := dbA.TSAUnitRenewals().ClaimRenewal(ctx, "01ab", loser, now, until); err != nil || !c.Claimed || c.Next != nil {
				t.Fatalf("the TSA unit's claim after the responder's renewal: %+v %v", c, err)
			}
			if err := dbA.TSAUnitRenewals().CompleteRenewal(ctx, "01ab", loser, timestamp.RenewedUnit{KeyLabel: "u", Cert: []byte{1}, Chain: []byte{2}}); err != nil {
				t.Fatal(err)
			}
			if rec, err := a.Recorded(ctx, "citizen", []byte{1}); err != nil || rec != nil {
				t.Fatalf("the TSA unit found as a responder: %+v %v", rec, err)
			}
		})
	}
}

// revocationRenewals names the store's type as the nodes see it.
type revocationRenewals struct{ revocation.ResponderRenewals }
