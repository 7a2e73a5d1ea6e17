package store_test

import (
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/thiqa/thiqa/enrol"
	"github.com/thiqa/thiqa/store"
	"github.com/thiqa/thiqa/store/storetest"
)

// TestClaimUnconfirmed: the sweep of unconfirmed CMP certificates claims
// the transactions that wait for a certConf since before the cutoff, and
// the claims left stale by a server that stopped, oldest first, a batch
// at a time; never a confirmed, rejected, implicit, expired, recent or
// freshly claimed one. A claimed transaction can no longer be confirmed,
// and is finished once.
func TestClaimUnconfirmed(t *testing.T) {
	for _, d := range storetest.Dialects() {
		t.Run(d.Name, func(t *testing.T) {
			ctx := t.Context()
			s := storetest.Open(t, d.NewConfig(t)).Enrolments()
			now := time.Now().UTC().Truncate(time.Second)
			cutoff, stale := now.Add(-enrol.ConfirmWaitTime), now.Add(-enrol.ExpiryLease)
			insert := func(id, state string, created time.Time) {
				t.Helper()
				tx := enrol.Transaction{ID: id, Sender: "ref:R", Serial: "0a" + id, Created: created, State: "waiting"}
				if err := s.InsertTransaction(ctx, tx); err != nil {
					t.Fatal(err)
				}
				if state != "waiting" {
					if err := s.CloseTransaction(ctx, id, state, created.Add(time.Second)); err != nil {
						t.Fatal(err)
					}
				}
			}
			hour := time.Hour
			insert("w1", "waiting", cutoff.Add(-3*hour))
			insert("w2", "waiting", cutoff.Add(-2*hour))
			insert("w3", "waiting", cutoff.Add(-time.Second))
			insert("stale", "expiring", cutoff.Add(-4*hour)) // claimed hours ago, never finished
			// Never claimed.
			insert("recent", "waiting", cutoff.Add(time.Second))
			insert("at-cutoff", "waiting", cutoff)
			insert("confirmed", "confirmed", cutoff.Add(-hour))
			insert("rejected", "rejected", cutoff.Add(-hour))
			insert("fresh-claim", "waiting", cutoff.Add(-hour))
			if err := s.CloseTransaction(ctx, "fresh-claim", "expiring", stale.Add(time.Second)); err != nil {
				t.Fatal(err)
			}
			if err := s.InsertTransaction(ctx, enrol.Transaction{ID: "implicit", Sender: "ref:R", Serial: "0b", Created: cutoff.Add(-hour),
				State: "implicit", Closed: cutoff.Add(-hour)}); err != nil {
				t.Fatal(err)
			}

			first, err := s.ClaimUnconfirmed(ctx, cutoff, stale, now, 3)
			if err != nil {
				t.Fatal(err)
			}
			second, err := s.ClaimUnconfirmed(ctx, cutoff, stale, now, 3)
			if err != nil {
				t.Fatal(err)
			}
			if got := ids(first); !slices.Equal(got, []string{"stale", "w1", "w2"}) {
				t.Fatalf("first claim %v, want the oldest three", got)
			}
			if got := ids(second); !slices.Equal(got, []string{"w3"}) {
				t.Fatalf("second claim %v, want [w3]", got)
			}
			if tx := first[1]; tx.Serial != "0aw1" || tx.State != "expiring" || !tx.Closed.Equal(now) || !tx.Created.Equal(cutoff.Add(-3*hour)) {
				t.Fatalf("claimed: %+v", tx)
			}
			if again, err := s.ClaimUnconfirmed(ctx, cutoff, stale, now, 10); err != nil || len(again) != 0 {
				t.Fatalf("claimed twice: %v %v", ids(again), err)
			}
			if err := s.CloseTransaction(ctx, "w1", "confirmed", now); !errors.Is(err, enrol.ErrNoTransaction) {
				t.Fatalf("a claimed transaction confirmed: %v", err)
			}
			if err := s.FinishExpired(ctx, "w1", now); err != nil {
				t.Fatal(err)
			}
			if err := s.FinishExpired(ctx, "w1", now); !errors.Is(err, enrol.ErrNoTransaction) {
				t.Fatalf("finished twice: %v", err)
			}
			if err := s.FinishExpired(ctx, "recent", now); !errors.Is(err, enrol.ErrNoTransaction) {
				t.Fatalf("a waiting transaction finished: %v", err)
			}
			if got, err := s.GetTransaction(ctx, "w1"); err != nil || got.State != "expired" {
				t.Fatalf("w1: %+v %v", got, err)
			}
			// Once the claims are stale, the unfinished ones are taken over,
			// never the finished one.
			later := now.Add(enrol.ExpiryLease + time.Second)
			over, err := s.ClaimUnconfirmed(ctx, later.Add(-enrol.ConfirmWaitTime), later.Add(-enrol.ExpiryLease), later, 10)
			if err != nil {
				t.Fatal(err)
			}
			if got := ids(over); !slices.Equal(got, []string{"stale", "w2", "fresh-claim", "w3", "at-cutoff", "recent"}) {
				t.Fatalf("taken over %v", got)
			}
		})
	}
}

func ids(txs []enrol.Transaction) []string {
	var out []string
	for _, tx := range txs {
		out = append(out, tx.ID)
	}
	return out
}

// TestClaimUnconfirmedConcurrent: servers sharing the database claim at
// once; each transaction is claimed by exactly one of them.
func TestClaimUnconfirmedConcurrent(t *testing.T) {
	for _, d := range storetest.Dialects() {
		t.Run(d.Name, func(t *testing.T) {
			ctx := t.Context()
			cfg := d.NewConfig(t)
			s := storetest.Open(t, cfg).Enrolments()
			now := time.Now().UTC()
			const waiting = 200
			for i := range waiting {
				tx := enrol.Transaction{ID: fmt.Sprintf("t%04d", i), Sender: "ref:R", Serial: "0a", Created: now.Add(-time.Hour + time.Duration(i)*time.Millisecond), State: "waiting"}
				if err := s.InsertTransaction(ctx, tx); err != nil {
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
						got, err := st.ClaimUnconfirmed(ctx, now.Add(-enrol.ConfirmWaitTime), now.Add(-enrol.ExpiryLease), now, 7)
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
			if len(seen) != waiting {
				t.Fatalf("%d transactions claimed, want %d", len(seen), waiting)
			}
			for id, n := range seen {
				if n != 1 {
					t.Fatalf("%s claimed %d times", id, n)
				}
			}
		})
	}
}

// TestMigrationKeepsCertificatesUnconfirmedBeforeTheWindow: a database
// upgraded from a release that announced no confirmWaitTime (and revoked
// nothing whose certConf never came) keeps those certificates: the
// transactions it left waiting for longer than the window are closed as
// unconfirmed by migration 0021, so that the first sweep after the upgrade
// does not revoke certificates in use for months; one sent within the
// window stays waiting, and the rest of the table is as it was.
func TestMigrationKeepsCertificatesUnconfirmedBeforeTheWindow(t *testing.T) {
	for _, d := range storetest.Dialects() {
		t.Run(d.Name, func(t *testing.T) {
			ctx := t.Context()
			cfg := d.NewConfig(t)
			db := storetest.Open(t, cfg)
			s := db.Enrolments()
			now := time.Now().UTC().Truncate(time.Second)
			insert := func(id string, created time.Time) {
				t.Helper()
				if err := s.InsertTransaction(ctx, enrol.Transaction{ID: id, Sender: "ref:R", Serial: "0a" + id, Created: created, State: "waiting"}); err != nil {
					t.Fatal(err)
				}
			}
			// What a release before 0021 left: waiting transactions of every age.
			insert("legacy-old", now.Add(-90*24*time.Hour))
			insert("legacy-hour", now.Add(-time.Hour))
			insert("in-flight", now.Add(-time.Minute))
			insert("confirmed", now.Add(-2*time.Hour))
			if err := s.CloseTransaction(ctx, "confirmed", "confirmed", now.Add(-2*time.Hour)); err != nil {
				t.Fatal(err)
			}
			if err := db.ExecTx(ctx, `DROP INDEX cmp_transactions_open`); err != nil {
				t.Fatal(err)
			}
			if err := db.ExecTx(ctx, `DELETE FROM schema_migrations WHERE version = '0021_cmp_confirm_wait'`); err != nil {
				t.Fatal(err)
			}

			db = storetest.Open(t, cfg) // the upgrade: applies 0021
			s = db.Enrolments()
			for id, want := range map[string]string{"legacy-old": "unconfirmed", "legacy-hour": "unconfirmed", "in-flight": "waiting", "confirmed": "confirmed"} {
				tx, err := s.GetTransaction(ctx, id)
				if err != nil || tx.State != want {
					t.Fatalf("%s after the upgrade: %+v %v, want %s", id, tx, err, want)
				}
			}
			// The first sweep after the upgrade claims none of the release's
			// certificates; the one sent within the window once it is over.
			later := time.Now()
			if got, err := s.ClaimUnconfirmed(ctx, later.Add(-enrol.ConfirmWaitTime), later.Add(-enrol.ExpiryLease), later, 100); err != nil || len(got) != 0 {
				t.Fatalf("first sweep after the upgrade claimed %v, %v; want none", ids(got), err)
			}
			later = later.Add(enrol.ConfirmWaitTime)
			if got, err := s.ClaimUnconfirmed(ctx, later.Add(-enrol.ConfirmWaitTime), later.Add(-enrol.ExpiryLease), later, 100); err != nil || !slices.Equal(ids(got), []string{"in-flight"}) {
				t.Fatalf("sweep once the window is over: %v, %v; want [in-flight]", ids(got), err)
			}
		})
	}
}

// TestClaimFollowUps: the sweep claims the transactions whose certConf's
// follow-up is undone (rejecting, confirming) once their claim is stale,
// oldest first, a batch at a time, each once until its claim is stale
// again; never a waiting, expiring or closed one, nor a fresh one.
// FinishFollowUp closes each to its settled state, once.
func TestClaimFollowUps(t *testing.T) {
	for _, d := range storetest.Dialects() {
		t.Run(d.Name, func(t *testing.T) {
			ctx := t.Context()
			s := storetest.Open(t, d.NewConfig(t)).Enrolments()
			now := time.Now().UTC().Truncate(time.Second)
			stale := now.Add(-enrol.ExpiryLease)
			insert := func(id, state string, closed time.Time) {
				t.Helper()
				created := closed.Add(-time.Minute)
				if err := s.InsertTransaction(ctx, enrol.Transaction{ID: id, Sender: "ref:R", Serial: "0a" + id, Created: created, State: "waiting"}); err != nil {
					t.Fatal(err)
				}
				if state != "waiting" {
					if err := s.CloseTransaction(ctx, id, state, closed); err != nil {
						t.Fatal(err)
					}
				}
			}
			insert("r1", "rejecting", stale.Add(-3*time.Hour))
			insert("c1", "confirming", stale.Add(-2*time.Hour))
			insert("r2", "rejecting", stale.Add(-time.Second))
			// Never claimed.
			insert("fresh", "rejecting", stale.Add(time.Second))
			insert("waiting", "waiting", stale.Add(-time.Hour))
			insert("expiring", "expiring", stale.Add(-time.Hour))
			insert("rejected", "rejected", stale.Add(-time.Hour))
			insert("confirmed", "confirmed", stale.Add(-time.Hour))

			first, err := s.ClaimFollowUps(ctx, stale, now, 2)
			if err != nil {
				t.Fatal(err)
			}
			second, err := s.ClaimFollowUps(ctx, stale, now, 2)
			if err != nil {
				t.Fatal(err)
			}
			if got := ids(first); !slices.Equal(got, []string{"r1", "c1"}) {
				t.Fatalf("first claim %v, want [r1 c1]", got)
			}
			if got := ids(second); !slices.Equal(got, []string{"r2"}) {
				t.Fatalf("second claim %v, want [r2]", got)
			}
			if tx := first[1]; tx.Serial != "0ac1" || tx.State != "confirming" || !tx.Closed.Equal(now) || tx.Sender != "ref:R" {
				t.Fatalf("claimed: %+v", tx)
			}
			if again, err := s.ClaimFollowUps(ctx, stale, now, 10); err != nil || len(again) != 0 {
				t.Fatalf("claimed twice: %v %v", ids(again), err)
			}
			if err := s.FinishFollowUp(ctx, "r1", now); err != nil {
				t.Fatal(err)
			}
			if err := s.FinishFollowUp(ctx, "c1", now); err != nil {
				t.Fatal(err)
			}
			if err := s.FinishFollowUp(ctx, "r1", now); !errors.Is(err, enrol.ErrNoTransaction) {
				t.Fatalf("finished twice: %v", err)
			}
			for _, id := range []string{"waiting", "expiring", "rejected"} {
				if err := s.FinishFollowUp(ctx, id, now); !errors.Is(err, enrol.ErrNoTransaction) {
					t.Fatalf("%s finished: %v", id, err)
				}
			}
			for id, want := range map[string]string{"r1": "rejected", "c1": "confirmed", "r2": "rejecting", "waiting": "waiting", "expiring": "expiring"} {
				if got, err := s.GetTransaction(ctx, id); err != nil || got.State != want {
					t.Fatalf("%s: %+v %v, want %s", id, got, err, want)
				}
			}
			// Once the claims are stale, the unfinished ones are taken over,
			// never the finished ones.
			later := now.Add(enrol.ExpiryLease + time.Second)
			over, err := s.ClaimFollowUps(ctx, later.Add(-enrol.ExpiryLease), later, 10)
			if err != nil {
				t.Fatal(err)
			}
			if got := ids(over); !slices.Equal(got, []string{"r2", "fresh"}) {
				t.Fatalf("taken over %v, want [r2 fresh]", got)
			}
		})
	}
}
