package store_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"sync/atomic"
	"testing"
	"time"

	"github.com/thiqa/thiqa/internal/audit"
	"github.com/thiqa/thiqa/notify"
	"github.com/thiqa/thiqa/store/storetest"
)

// TestNotifyLeaseIgnoresNodeClocks: two nodes whose clocks are 4 minutes
// apart agree on the lease, which the database times by its own clock. The
// node 2 minutes ahead does not take over the other's live lease (before,
// it saw it lapsed and both delivered at once), and the node 2 minutes
// behind takes over the other's lease once it lapsed, after the lease's
// duration (before, only minutes later).
func TestNotifyLeaseIgnoresNodeClocks(t *testing.T) {
	const lease = 2 * time.Second
	for _, d := range storetest.Dialects() {
		t.Run(d.Name, func(t *testing.T) {
			ctx := ctxT(t)
			db := storetest.Open(t, d.NewConfig(t))
			log := audit.New(db, slog.New(slog.DiscardHandler), nil, audit.Options{})
			defer log.Close()
			g := newNotifyGateway(t)
			const ahead, behind = 0, 1
			skew := [2]time.Duration{ahead: 2 * time.Minute, behind: -2 * time.Minute}
			var sent [2]atomic.Int64
			var nodes [2]*notify.Notifier
			for i := range nodes {
				nodes[i] = newNotifier(t, db, g, notify.Options{
					Holder: fmt.Sprint("node-", i),
					Now:    func() time.Time { return time.Now().Add(skew[i]) },
					Lease:  lease,
					Client: &http.Client{Transport: countingTransport{n: &sent[i]}},
				})
			}
			login := func() {
				t.Helper()
				if _, err := log.Append(ctx, audit.Entry{Actor: "citizen:12345678", Action: "oidc.login", Object: "tax", Outcome: "success"}); err != nil {
					t.Fatal(err)
				}
			}
			round := func(i int) {
				t.Helper()
				if _, err := nodes[i].Round(ctx); err != nil {
					t.Fatalf("node %d: %v", i, err)
				}
			}
			// held makes node i hold the lease and deliver one
			// notification; the other, whatever its clock says, does not
			// take the lease over while it is live. It returns a time
			// after node i's last claim.
			held := func(i int, want [2]int64) time.Time {
				t.Helper()
				start := time.Now()
				round(i)
				login()
				round(1 - i)
				if got := sent[1-i].Load(); got != want[1-i] && time.Since(start) < lease {
					t.Fatalf("node %d (clock %s) delivered while node %d (clock %s) held the lease", 1-i, skew[1-i], i, skew[i])
				} else if got != want[1-i] {
					t.Fatalf("inconclusive: %s went by, more than the lease (%s)", time.Since(start), lease)
				}
				round(i)
				if got := sent[i].Load(); got != want[i] {
					t.Fatalf("node %d sent %d, want %d", i, got, want[i])
				}
				return time.Now()
			}
			drainNotifier(t, nodes[behind]) // the cursor at the head
			claimed := held(behind, [2]int64{ahead: 0, behind: 1})
			time.Sleep(time.Until(claimed.Add(lease + 200*time.Millisecond)))
			claimed = held(ahead, [2]int64{ahead: 1, behind: 1})
			// The lease lapses after its duration, by the database's
			// clock: the node behind takes over then, not minutes later.
			time.Sleep(time.Until(claimed.Add(lease + 200*time.Millisecond)))
			login()
			round(behind)
			if got := sent[behind].Load(); got != 2 {
				t.Fatalf("node behind sent %d, want 2: it did not take over the lapsed lease", got)
			}
			if got := g.count(); got != 3 {
				t.Fatalf("%d delivered, want 3", got)
			}
		})
	}
}

// ClaimLease times the lease by the database's clock for the duration
// asked: another holder cannot claim it while it is live, can once it
// lapsed, and the first holder then has lost it.
func TestNotifyClaimLeaseDuration(t *testing.T) {
	for _, d := range storetest.Dialects() {
		t.Run(d.Name, func(t *testing.T) {
			ctx := ctxT(t)
			db := storetest.Open(t, d.NewConfig(t))
			st := db.Notify()
			const lease = 300 * time.Millisecond
			claim := func(holder string, want bool) {
				t.Helper()
				if ok, _, err := st.ClaimLease(ctx, holder, lease); err != nil || ok != want {
					t.Fatalf("%s: claimed %v, %v; want %v", holder, ok, err, want)
				}
			}
			start := time.Now()
			claim("a", true)
			claim("b", false)
			claim("a", true) // a renewal
			if time.Since(start) >= lease {
				t.Fatalf("inconclusive: %s went by, more than the lease (%s)", time.Since(start), lease)
			}
			time.Sleep(lease + 100*time.Millisecond)
			claim("b", true)
			if err := st.Advance(ctx, "a", 1); !errors.Is(err, notify.ErrLeaseLost) {
				t.Fatalf("Advance by the holder whose lease lapsed: %v", err)
			}
			if _, _, err := st.ClaimLease(context.Background(), "b", 0); err == nil {
				t.Fatal("a lease of 0 was claimed")
			}
		})
	}
}
