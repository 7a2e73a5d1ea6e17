package store_test

import (
	"context"
	"errors"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/thiqa/thiqa/internal/audit"
	"github.com/thiqa/thiqa/internal/outage"
	"github.com/thiqa/thiqa/store/storetest"
)

// TestFindByWindowConnectionsTerminatedMidSearch: PostgreSQL terminates
// the pool's connections again and again while searches by time run,
// many of them in several rounds of one read transaction. A search whose
// connection was lost in the middle runs again from its start, in a new
// snapshot: every answer is the whole answer (never a mix of the reads
// of two attempts, nor a part), and a search that fails says the
// database was unavailable.
func TestFindByWindowConnectionsTerminatedMidSearch(t *testing.T) {
	const n = 40000
	d := postgresDialect(t)
	cfg := d.NewConfig(t)
	ctx := ctxT(t)
	db := storetest.Open(t, cfg)
	all := randomSkewLog(t, db, rand.New(rand.NewPCG(3, 4)), n)
	sec := func(s int) time.Time { return findBase.Add(time.Duration(s) * time.Second) }
	queries := []audit.Query{
		{Since: sec(100), Until: sec(n - 100), Outcome: "denied", Limit: 3},
		{Since: sec(100), Until: sec(n - 100), Outcome: "denied", Limit: 3, OldestFirst: true},
		{Until: sec(n - 3000), Limit: 51},
		{Since: sec(n / 2), Until: sec(n/2 + 900), Limit: audit.MaxFindLimit + 1},
		{Since: sec(2000), Outcome: audit.OutcomeFailure, Limit: 51, OldestFirst: true},
	}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	var killed int
	wg.Add(1)
	go func() {
		defer wg.Done()
		c, err := pgx.Connect(ctx, cfg.DSN)
		if err != nil {
			t.Errorf("connecting to terminate backends: %v", err)
			return
		}
		defer c.Close(context.Background())
		for {
			select {
			case <-stop:
				return
			case <-time.After(time.Duration(30+rand.IntN(170)) * time.Millisecond):
			}
			var k int
			if err := c.QueryRow(ctx, `SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity
				WHERE datname = current_database() AND pid <> pg_backend_pid()`).Scan(&k); err != nil {
				t.Errorf("terminating backends: %v", err)
				return
			}
			killed += k
		}
	}()
	var answered, failed int
	for deadline := time.Now().Add(6 * time.Second); time.Now().Before(deadline); {
		for _, q := range queries {
			got, err := db.FindAuditRecords(ctx, q)
			if err != nil {
				if !outage.Is(err) || errors.Is(err, context.DeadlineExceeded) {
					t.Fatalf("%s: %v, want an answer or the database unavailable", describe(q), err)
				}
				failed++
				continue
			}
			if want := wantFound(all, q); !slices.Equal(seqs(got), want) {
				t.Fatalf("%s: got %d records %v, want %d", describe(q), len(got), seqs(got)[:min(len(got), 8)], len(want))
			}
			answered++
		}
	}
	close(stop)
	wg.Wait()
	t.Logf("%d answers, %d searches failed (database unavailable), %d connections terminated", answered, failed, killed)
	if answered == 0 || killed == 0 {
		t.Fatalf("%d answers, %d connections terminated: the test checked nothing", answered, killed)
	}
}

// TestFindByWindowLeavesNoSessionState: the read-only repeatable-read
// transaction of a search by time is set for that transaction only (one
// BEGIN): the pooled connection (the only one here), as PgBouncer in
// transaction pooling hands it to the next client, is back to the
// server's defaults afterwards, also after a search whose context ended
// in the middle.
func TestFindByWindowLeavesNoSessionState(t *testing.T) {
	d := postgresDialect(t)
	cfg := d.NewConfig(t)
	cfg.MaxOpenConns = 1
	ctx := ctxT(t)
	db := storetest.Open(t, cfg)
	randomSkewLog(t, db, rand.New(rand.NewPCG(5, 6)), 40000)
	q := audit.Query{Since: findBase.Add(100 * time.Second), Until: findBase.Add(39900 * time.Second), Outcome: "denied", Limit: 3}
	check := func(when string) {
		t.Helper()
		lines, err := db.QueryLines(ctx, "SELECT current_setting('transaction_isolation') || ' ' || current_setting('transaction_read_only') || ' ' || current_setting('default_transaction_isolation') || ' ' || current_setting('default_transaction_read_only')")
		if err != nil {
			t.Fatal(err)
		}
		if got := strings.TrimSpace(strings.Join(lines, "\n")); got != "read committed off read committed off" {
			t.Fatalf("%s: the connection's isolation and access: %q", when, got)
		}
	}
	if _, err := db.FindAuditRecords(ctx, q); err != nil {
		t.Fatal(err)
	}
	check("after a search")
	for _, after := range []time.Duration{time.Millisecond, 5 * time.Millisecond, 20 * time.Millisecond} {
		cctx, cancel := context.WithTimeout(ctx, after)
		_, _ = db.FindAuditRecords(cctx, q)
		cancel()
		check("after a search cut by its context after " + after.String())
	}
}
