package store_test

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/thiqa/thiqa/store"
	"github.com/thiqa/thiqa/store/storetest"
)

// TestExclusive: of two handles on one database (two nodes), the second
// does not get a named lock while the first holds it, and gets it once the
// first's work is over; fn's error comes back as it is and frees the lock.
// On PostgreSQL another name is not held up, and the second holder is seen
// waiting on the lock before the first lets go.
func TestExclusive(t *testing.T) {
	for _, d := range storetest.Dialects() {
		t.Run(d.Name, func(t *testing.T) {
			cfg := d.NewConfig(t)
			a, b := storetest.Open(t, cfg), storetest.Open(t, cfg)
			ctx := t.Context()

			if err := a.Exclusive(ctx, "", func(context.Context) error { return nil }); err == nil {
				t.Error("a lock without a name was taken")
			}
			boom := errors.New("boom")
			runs := 0
			if err := a.Exclusive(ctx, "key:x", func(context.Context) error { runs++; return boom }); !errors.Is(err, boom) || runs != 1 {
				t.Fatalf("fn's error: %v after %d runs", err, runs)
			}

			holding, release, aDone := make(chan struct{}), make(chan struct{}), atomic.Bool{}
			aErr := make(chan error, 1)
			go func() {
				aErr <- a.Exclusive(ctx, "key:x", func(context.Context) error {
					close(holding)
					<-release
					aDone.Store(true)
					return nil
				})
			}()
			<-holding

			// While a holds the lock, b does not get it: its wait ends
			// with its context, and its work never runs.
			short, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
			ranEarly := false
			err := b.Exclusive(short, "key:x", func(context.Context) error { ranEarly = true; return nil })
			cancel()
			if err == nil || ranEarly {
				t.Fatalf("b took the lock a holds: %v, ran %v", err, ranEarly)
			}

			if d.Name == store.DriverPostgres {
				// Another name is another lock.
				if err := b.Exclusive(ctx, "key:y", func(context.Context) error { return nil }); err != nil {
					t.Fatalf("another name: %v", err)
				}
			}

			// b waits, then runs after a's work.
			bErr, sawADone := make(chan error, 1), atomic.Bool{}
			go func() {
				bErr <- b.Exclusive(ctx, "key:x", func(context.Context) error {
					sawADone.Store(aDone.Load())
					return nil
				})
			}()
			if d.Name == store.DriverPostgres {
				waitForWaitingAdvisoryLock(t, a)
			}
			select {
			case err := <-bErr:
				t.Fatalf("b got the lock a holds: %v", err)
			default:
			}
			close(release)
			if err := <-aErr; err != nil {
				t.Fatalf("a: %v", err)
			}
			if err := <-bErr; err != nil || !sawADone.Load() {
				t.Fatalf("b: %v; ran after a's work: %v", err, sawADone.Load())
			}
		})
	}
}

// waitForWaitingAdvisoryLock returns once PostgreSQL shows a session
// waiting for an advisory lock.
func waitForWaitingAdvisoryLock(t *testing.T, db *store.DB) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		n, err := db.QueryInt64(t.Context(), "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted AND database = (SELECT oid FROM pg_database WHERE datname = current_database())")
		if err != nil {
			t.Fatal(err)
		}
		if n > 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatal("nobody waits for the advisory lock")
		}
		time.Sleep(10 * time.Millisecond)
	}
}
