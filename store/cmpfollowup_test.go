package store_test

import (
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/thiqa/thiqa/enrol"
	"github.com/thiqa/thiqa/store"
	"github.com/thiqa/thiqa/store/storetest"
)

// TestClaimFollowUpsConcurrent: the sweeps of servers sharing the database
// claim the undone follow-ups at once; each transaction goes to exactly
// one of them until its claim is stale.
func TestClaimFollowUpsConcurrent(t *testing.T) {
	for _, d := range storetest.Dialects() {
		t.Run(d.Name, func(t *testing.T) {
			ctx := t.Context()
			cfg := d.NewConfig(t)
			s := storetest.Open(t, cfg).Enrolments()
			now := time.Now().UTC()
			const undone = 200
			for i := range undone {
				id := fmt.Sprintf("t%04d", i)
				created := now.Add(-time.Hour + time.Duration(i)*time.Millisecond)
				if err := s.InsertTransaction(ctx, enrol.Transaction{ID: id, Sender: "ref:R", Serial: "0a", Created: created, State: "waiting"}); err != nil {
					t.Fatal(err)
				}
				state := []string{"rejecting", "confirming"}[i%2]
				if err := s.CloseTransaction(ctx, id, state, created.Add(time.Second)); err != nil {
					t.Fatal(err)
				}
			}
			other := storetest.Open(t, cfg) // another instance
			var wg sync.WaitGroup
			var mu sync.Mutex
			seen := map[string]int{}
			for _, st := range []*store.Enrolments{s, other.Enrolments(), s, other.Enrolments()} {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for {
						got, err := st.ClaimFollowUps(ctx, now.Add(-enrol.ExpiryLease), now, 7)
						if err != nil {
							t.Error(err)
							return
						}
						mu.Lock()
						for _, tx := range got {
							seen[tx.ID]++
						}
						mu.Unlock()
						if len(got) == 0 {
							return
						}
					}
				}()
			}
			wg.Wait()
			if len(seen) != undone {
				t.Fatalf("%d transactions claimed, want %d", len(seen), undone)
			}
			for id, n := range seen {
				if n != 1 {
					t.Fatalf("%s claimed %d times", id, n)
				}
			}
		})
	}
}

// TestMigration0024KeepsOpenTransactions: a database at migration 0023
// with transactions in every state of that release (open ones included)
// is upgraded: every row is kept as it was, the sweep of unconfirmed
// certificates still finds the open ones, the purge and the follow-up
// sweep see the rows as before, and the new states can be written.
func TestMigration0024KeepsOpenTransactions(t *testing.T) {
	for _, d := range storetest.Dialects() {
		t.Run(d.Name, func(t *testing.T) {
			ctx := t.Context()
			cfg := d.NewConfig(t)
			db := storetest.Open(t, cfg)
			s := db.Enrolments()
			now := time.Now().UTC().Truncate(time.Second)
			insert := func(id, state string, created time.Time) {
				t.Helper()
				if err := s.InsertTransaction(ctx, enrol.Transaction{ID: id, Sender: "ref:" + id, Serial: "0a" + id, Created: created, State: "waiting"}); err != nil {
					t.Fatal(err)
				}
				if state != "waiting" {
					if err := s.CloseTransaction(ctx, id, state, created.Add(time.Second)); err != nil {
						t.Fatal(err)
					}
				}
			}
			// What release 0023 leaves: waiting (in and past the window),
			// claimed by a sweep that stopped, and closed ones.
			insert("waiting-new", "waiting", now.Add(-time.Minute))
			insert("waiting-old", "waiting", now.Add(-enrol.ConfirmWaitTime-time.Hour))
			insert("expiring", "expiring", now.Add(-time.Hour))
			insert("confirmed", "confirmed", now.Add(-time.Hour))
			insert("rejected", "rejected", now.Add(-time.Hour))
			insert("implicit", "waiting", now.Add(-time.Hour))
			if err := db.ExecTx(ctx, `UPDATE cmp_transactions SET state = 'implicit' WHERE transaction_id = 'implicit'`); err != nil {
				t.Fatal(err)
			}
			// Back to 0023: its constraint (PostgreSQL), no follow-up index.
			if err := db.ExecTx(ctx, `DROP INDEX cmp_transactions_follow_up`); err != nil {
				t.Fatal(err)
			}
			if d.Name == "postgres" {
				if err := db.ExecTx(ctx, `ALTER TABLE cmp_transactions DROP CONSTRAINT cmp_transactions_state_check`); err != nil {
					t.Fatal(err)
				}
				if err := db.ExecTx(ctx, `ALTER TABLE cmp_transactions ADD CONSTRAINT cmp_transactions_state_check
					CHECK (state IN ('waiting', 'confirmed', 'rejected', 'implicit', 'expiring', 'expired', 'unconfirmed'))`); err != nil {
					t.Fatal(err)
				}
			}
			if err := db.ExecTx(ctx, `DELETE FROM schema_migrations WHERE version = '0024_cmp_confirm_follow_up'`); err != nil {
				t.Fatal(err)
			}
			before := map[string]*enrol.Transaction{}
			for _, id := range []string{"waiting-new", "waiting-old", "expiring", "confirmed", "rejected", "implicit"} {
				tx, err := s.GetTransaction(ctx, id)
				if err != nil {
					t.Fatal(err)
				}
				before[id] = tx
			}

			db = storetest.Open(t, cfg) // the upgrade: applies 0024
			s = db.Enrolments()
			for id, want := range before {
				got, err := s.GetTransaction(ctx, id)
				if err != nil || *got != *want {
					t.Fatalf("%s after the upgrade: %+v %v, want %+v", id, got, err, want)
				}
			}
			if got, err := s.ClaimFollowUps(ctx, now, now, 100); err != nil || len(got) != 0 {
				t.Fatalf("follow-up sweep after the upgrade claimed %v, %v; want none", ids(got), err)
			}
			later := now.Add(time.Minute)
			got, err := s.ClaimUnconfirmed(ctx, later.Add(-enrol.ConfirmWaitTime), later.Add(-enrol.ExpiryLease), later, 100)
			if err != nil || !slices.Equal(ids(got), []string{"waiting-old", "expiring"}) {
				t.Fatalf("unconfirmed sweep after the upgrade: %v, %v; want [waiting-old expiring]", ids(got), err)
			}
			// The open one still takes its certConf, in the new states.
			if err := s.CloseTransaction(ctx, "waiting-new", "confirming", later); err != nil {
				t.Fatal(err)
			}
			if err := s.FinishFollowUp(ctx, "waiting-new", later); err != nil {
				t.Fatal(err)
			}
		})
	}
}
