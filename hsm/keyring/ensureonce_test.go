package keyring

import (
	"context"
	"database/sql"
	"errors"
	"log/slog"
	"sync"
	"testing"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib" // the "pgx" driver, to watch pg_locks

	"github.com/thiqa/thiqa/hsm"
	"github.com/thiqa/thiqa/internal/testenv"
	"github.com/thiqa/thiqa/store"
	"github.com/thiqa/thiqa/store/storetest"
)

// missHook is a token on which a FindKey that finds nothing calls missed
// before it returns.
type missHook struct {
	KeyMaker
	missed func()
}

func (h missHook) FindKey(ctx context.Context, label string) (*hsm.Signer, error) {
	k, err := h.KeyMaker.FindKey(ctx, label)
	if errors.Is(err, hsm.ErrKeyNotFound) {
		h.missed()
	}
	return k, err
}

// tryHook is a lock that calls trying just before it asks for the lock.
type tryHook struct {
	Lock
	trying func()
}

func (h tryHook) Exclusive(ctx context.Context, name string, fn func(context.Context) error) error {
	h.trying()
	return h.Lock.Exclusive(ctx, name, fn)
}

// TestEnsureOnceTwoNodes: two nodes (two handles on one SoftHSM token, two
// store handles on one database) ensure the same missing key at once, and
// exactly one key is generated, by one of them; the other finds it. The
// race is made, not hoped for: node A, having found nothing, waits until
// node B has found nothing too (which a missing lock lets it do: then both
// generate) or B is waiting for the lock (on PostgreSQL seen in pg_locks;
// on SQLite, whose waiting cannot be seen, after B asked for the lock and
// a pause).
func TestEnsureOnceTwoNodes(t *testing.T) {
	for _, d := range storetest.Dialects() {
		t.Run(d.Name, func(t *testing.T) {
			ctx := t.Context()
			module := testenv.PKCS11Module(t)
			tokLabel := testenv.UniqueLabel("kr")
			if err := hsm.InitToken(module, tokLabel, "so-secret-8642", "user-secret-9731"); err != nil {
				t.Fatalf("InitToken: %v", err)
			}
			openToken := func() *hsm.Token {
				tok, err := hsm.Open(ctx, hsm.Config{ModulePath: module, TokenLabel: tokLabel, PIN: "user-secret-9731",
					Logger: slog.New(slog.DiscardHandler)})
				if err != nil {
					t.Fatalf("Open: %v", err)
				}
				t.Cleanup(func() { _ = tok.Close() })
				return tok
			}
			cfg := d.NewConfig(t)
			tokA, tokB := openToken(), openToken()
			dbA, dbB := storetest.Open(t, cfg), storetest.Open(t, cfg)

			const label = "portal-oidc-client"
			aMissed, bTrying, bMissed := make(chan struct{}), make(chan struct{}), make(chan struct{})
			bWaiting := waitingForLock(t, d.Name, cfg, bTrying)

			type result struct {
				key       *hsm.Signer
				generated bool
				err       error
			}
			var a, b result
			var wg sync.WaitGroup
			wg.Go(func() {
				node := missHook{KeyMaker: tokA, missed: func() {
					close(aMissed)
					select {
					case <-bMissed: // no lock between the nodes: both generate
					case <-bWaiting:
					}
				}}
				a.key, a.generated, a.err = EnsureOnce(ctx, dbA, node, label, hsm.ECP256)
			})
			wg.Go(func() {
				<-aMissed
				node := missHook{KeyMaker: tokB, missed: func() { close(bMissed) }}
				b.key, b.generated, b.err = EnsureOnce(ctx, tryHook{Lock: dbB, trying: func() { close(bTrying) }}, node, label, hsm.ECP256)
			})
			wg.Wait()

			if a.err != nil || b.err != nil {
				t.Fatalf("node A: %v; node B: %v", a.err, b.err)
			}
			keys, err := tokA.ListKeys(ctx)
			if err != nil {
				t.Fatal(err)
			}
			n := 0
			for _, k := range keys {
				if k.Label == label {
					n++
				}
			}
			if n != 1 {
				t.Fatalf("%d keys labelled %s on the token, want 1", n, label)
			}
			if !a.generated || b.generated || a.key.URI() != b.key.URI() {
				t.Fatalf("A generated %v (%s), B generated %v (%s): want A to generate the key B finds",
					a.generated, a.key.URI(), b.generated, b.key.URI())
			}
		})
	}
}

// waitingForLock returns a channel closed once node B, after trying is
// closed, waits for the lock: on PostgreSQL when a session of cfg's
// database waits for an advisory lock, on SQLite after a pause.
func waitingForLock(t *testing.T, dialect string, cfg store.Config, trying <-chan struct{}) <-chan struct{} {
	t.Helper()
	waiting := make(chan struct{})
	var pg *sql.DB
	if dialect == store.DriverPostgres {
		var err error
		if pg, err = sql.Open("pgx", cfg.DSN); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = pg.Close() })
	}
	ctx := t.Context()
	go func() {
		select {
		case <-trying:
		case <-ctx.Done():
			return
		}
		if pg == nil {
			select {
			case <-time.After(500 * time.Millisecond):
				close(waiting)
			case <-ctx.Done():
			}
			return
		}
		for {
			var n int
			err := pg.QueryRowContext(ctx, `SELECT count(*) FROM pg_locks
	WHERE locktype = 'advisory' AND NOT granted AND database = (SELECT oid FROM pg_database WHERE datname = current_database())`).Scan(&n)
			if err != nil && ctx.Err() == nil {
				t.Errorf("reading pg_locks: %v", err)
			}
			if err != nil || n > 0 {
				close(waiting)
				return
			}
			select {
			case <-time.After(10 * time.Millisecond):
			case <-ctx.Done():
				return
			}
		}
	}()
	return waiting
}
