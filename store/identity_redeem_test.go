package store_test

import (
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/thiqa/thiqa/identity"
	"github.com/thiqa/thiqa/store/storetest"
)

// TestRedeemCodeRaceRevokes: a code presented twice at the same moment is
// a code used twice (RFC 6749 section 4.1.2): the loser is told
// ErrCodeReused, not a conflict answered as a passing failure, and the
// grant is revoked, so that the winner's tokens die too. Under
// PostgreSQL's read committed both requests read the code unredeemed and
// the loser's update found no row; it used to return ErrConflict and leave
// the winner's tokens valid.
func TestRedeemCodeRaceRevokes(t *testing.T) {
	for _, d := range storetest.Dialects() {
		t.Run(d.Name, func(t *testing.T) {
			ctx := ctxT(t)
			s := storetest.Open(t, d.NewConfig(t)).Identity()
			now := time.Now()
			for i := range 10 {
				hash := []byte(fmt.Sprintf("race-%d", i))
				g := &identity.Grant{ID: fmt.Sprintf("race-%d", i), CodeHash: hash, Citizen: identity.Citizen{CivilNumber: "12345678"},
					Method: identity.MethodMobile, AuthTime: now, Created: now, CodeExpires: now.Add(time.Minute)}
				if err := s.CreateGrant(ctx, g); err != nil {
					t.Fatal(err)
				}
				var wg sync.WaitGroup
				var mu sync.Mutex
				wins, reused := 0, 0
				var other []error
				for range 6 {
					wg.Add(1)
					go func() {
						defer wg.Done()
						_, err := s.RedeemCode(ctx, hash, now, now.Add(time.Hour))
						mu.Lock()
						defer mu.Unlock()
						switch {
						case err == nil:
							wins++
						case errors.Is(err, identity.ErrCodeReused):
							reused++
						default:
							other = append(other, err)
						}
					}()
				}
				wg.Wait()
				if wins != 1 || reused != 5 || len(other) != 0 {
					t.Fatalf("grant %d: %d won, %d told reused, others: %v", i, wins, reused, other)
				}
				if back, err := s.Grant(ctx, g.ID); err != nil || !back.Revoked {
					t.Fatalf("grant %d not revoked after a concurrent reuse: %+v %v", i, back, err)
				}
			}
		})
	}
}
