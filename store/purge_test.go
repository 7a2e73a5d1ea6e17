package store_test

import (
	"crypto/sha256"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/thiqa/thiqa/enrol"
	"github.com/thiqa/thiqa/store"
	"github.com/thiqa/thiqa/store/storetest"
)

// TestPurgeEnrolments: enrolments expired or used before the cutoff go, a
// batch at a time; one still valid at the cutoff and unused (open or
// claimed), or used or expired after it, stays.
func TestPurgeEnrolments(t *testing.T) {
	for _, d := range storetest.Dialects() {
		t.Run(d.Name, func(t *testing.T) {
			ctx := t.Context()
			s := storetest.Open(t, d.NewConfig(t)).Enrolments()
			now := time.Now().UTC().Truncate(time.Second)
			cutoff := now.Add(-enrol.EnrolmentRetention)
			day := 24 * time.Hour
			insert := func(ref string, created, expires time.Time) {
				t.Helper()
				e := enrol.Enrolment{Reference: ref, Profile: "citizen-auth", Subject: map[string]string{"commonName": ref},
					SecretHash: sha256.Sum256([]byte(ref)), CreatedBy: "officer", Created: created, Expires: expires}
				if err := s.InsertEnrolment(ctx, e, nil); err != nil {
					t.Fatal(err)
				}
			}
			claim := func(ref string, at time.Time) {
				t.Helper()
				if err := s.ClaimEnrolment(ctx, ref, "c-"+ref, at, at.Add(-enrol.ClaimTimeout)); err != nil {
					t.Fatal(err)
				}
			}
			use := func(ref string, at time.Time) {
				t.Helper()
				claim(ref, at)
				if err := s.CompleteEnrolment(ctx, ref, "c-"+ref, "0a", at, nil); err != nil {
					t.Fatal(err)
				}
			}
			// Kept.
			insert("OPEN-VALID", now.Add(-40*day), now.Add(time.Hour)) // old, yet valid: it may still be used
			insert("OPEN-RECENT-EXPIRY", now.Add(-10*day), now.Add(-day))
			insert("CLAIMED-VALID", now.Add(-40*day), now.Add(time.Hour))
			claim("CLAIMED-VALID", now.Add(-35*day)) // a claim, even stale, on a valid enrolment
			insert("USED-RECENTLY", now.Add(-40*day), now.Add(time.Hour))
			use("USED-RECENTLY", now.Add(-day))
			insert("EXPIRES-AT-CUTOFF", now.Add(-60*day), cutoff)
			// Gone.
			insert("OPEN-EXPIRED", now.Add(-40*day), cutoff.Add(-time.Second))
			insert("CLAIMED-EXPIRED", now.Add(-40*day), cutoff.Add(-day))
			claim("CLAIMED-EXPIRED", now.Add(-39*day))
			insert("USED-LONG-AGO", now.Add(-40*day), now.Add(time.Hour)) // used long ago, though not expired
			use("USED-LONG-AGO", cutoff.Add(-time.Minute))
			for i := range 3 {
				insert(fmt.Sprintf("OLD%d", i), now.Add(-90*day), now.Add(-80*day))
			}
			gone := []string{"OPEN-EXPIRED", "CLAIMED-EXPIRED", "USED-LONG-AGO", "OLD0", "OLD1", "OLD2"}
			kept := []string{"OPEN-VALID", "OPEN-RECENT-EXPIRY", "CLAIMED-VALID", "USED-RECENTLY", "EXPIRES-AT-CUTOFF"}

			// Batches of 4: 4 + 2 + 0.
			var counts []int64
			for range 3 {
				n, err := s.PurgeEnrolments(ctx, cutoff, 4)
				if err != nil {
					t.Fatal(err)
				}
				counts = append(counts, n)
			}
			if fmt.Sprint(counts) != "[4 2 0]" {
				t.Fatalf("rows deleted per batch of 4: %v, want [4 2 0]", counts)
			}
			for _, ref := range gone {
				if _, err := s.GetEnrolment(ctx, ref); !errors.Is(err, enrol.ErrNotFound) {
					t.Errorf("%s: %v, want purged", ref, err)
				}
			}
			for _, ref := range kept {
				if _, err := s.GetEnrolment(ctx, ref); err != nil {
					t.Errorf("%s purged: %v", ref, err)
				}
			}
			// The claimed, valid enrolment is still usable.
			if err := s.CompleteEnrolment(ctx, "CLAIMED-VALID", "c-CLAIMED-VALID", "0b", now, nil); err != nil {
				t.Fatalf("the claim of a kept enrolment: %v", err)
			}
		})
	}
}

// TestPurgeTransactions: CMP transactions closed before the cutoff
// (confirmed, rejected, implicit, expired) go; those created or closed
// since stay, and so do those still waiting for a certConf or being
// revoked for want of one (expiring), or whose certConf's follow-up is
// undone (rejecting, confirming), however old: the sweep of unconfirmed
// certificates closes them first.
func TestPurgeTransactions(t *testing.T) {
	for _, d := range storetest.Dialects() {
		t.Run(d.Name, func(t *testing.T) {
			ctx := t.Context()
			s := storetest.Open(t, d.NewConfig(t)).Enrolments()
			now := time.Now().UTC().Truncate(time.Second)
			cutoff := now.Add(-enrol.TransactionRetention)
			insert := func(id, state string, created, closed time.Time) {
				t.Helper()
				tx := enrol.Transaction{ID: id, Sender: "ref:R", Serial: "0a", Created: created, State: state, Closed: closed}
				if err := s.InsertTransaction(ctx, tx); err != nil {
					t.Fatal(err)
				}
			}
			old, recent := cutoff.Add(-time.Hour), cutoff.Add(time.Hour)
			insert("waiting-recent", "waiting", recent, time.Time{})
			insert("confirmed-late", "waiting", old, time.Time{})
			if err := s.CloseTransaction(ctx, "confirmed-late", "confirmed", recent); err != nil {
				t.Fatal(err)
			}
			insert("implicit-recent", "implicit", recent, recent)
			insert("at-cutoff", "waiting", cutoff, time.Time{})
			insert("waiting-old", "waiting", old, time.Time{})
			insert("expiring-old", "waiting", old, time.Time{})
			if err := s.CloseTransaction(ctx, "expiring-old", "expiring", old); err != nil {
				t.Fatal(err)
			}

			insert("expired-old", "waiting", old.Add(-time.Hour), time.Time{})
			if err := s.CloseTransaction(ctx, "expired-old", "expiring", old); err != nil {
				t.Fatal(err)
			}
			if err := s.FinishExpired(ctx, "expired-old", old); err != nil {
				t.Fatal(err)
			}
			for _, st := range []string{"rejecting", "confirming"} {
				insert(st+"-old", "waiting", old.Add(-time.Hour), time.Time{})
				if err := s.CloseTransaction(ctx, st+"-old", st, old); err != nil {
					t.Fatal(err)
				}
			}
			insert("implicit-old", "implicit", old, old)
			insert("confirmed-old", "waiting", old.Add(-time.Hour), time.Time{})
			if err := s.CloseTransaction(ctx, "confirmed-old", "confirmed", old); err != nil {
				t.Fatal(err)
			}
			insert("rejected-old", "waiting", old.Add(-time.Hour), time.Time{})
			if err := s.CloseTransaction(ctx, "rejected-old", "rejected", old); err != nil {
				t.Fatal(err)
			}

			if n, err := s.PurgeTransactions(ctx, cutoff, 3); err != nil || n != 3 {
				t.Fatalf("first batch of 3: %d %v", n, err)
			}
			if n, err := s.PurgeTransactions(ctx, cutoff, 3); err != nil || n != 1 {
				t.Fatalf("second batch: %d %v, want 1", n, err)
			}
			for _, id := range []string{"expired-old", "implicit-old", "confirmed-old", "rejected-old"} {
				if _, err := s.GetTransaction(ctx, id); !errors.Is(err, enrol.ErrNoTransaction) {
					t.Errorf("%s: %v, want purged", id, err)
				}
			}
			for _, id := range []string{"waiting-recent", "confirmed-late", "implicit-recent", "at-cutoff", "waiting-old", "expiring-old", "rejecting-old", "confirming-old"} {
				if _, err := s.GetTransaction(ctx, id); err != nil {
					t.Errorf("%s purged: %v", id, err)
				}
			}
			// A waiting transaction kept can still be confirmed.
			if err := s.CloseTransaction(ctx, "waiting-recent", "confirmed", now); err != nil {
				t.Fatal(err)
			}
		})
	}
}

// TestPurgeConcurrent: instances sharing the database purge at once
// without errors, each row going once, the valid ones kept.
func TestPurgeConcurrent(t *testing.T) {
	for _, d := range storetest.Dialects() {
		t.Run(d.Name, func(t *testing.T) {
			ctx := t.Context()
			cfg := d.NewConfig(t)
			db := storetest.Open(t, cfg)
			s := db.Enrolments()
			now := time.Now().UTC()
			cutoff := now.Add(-enrol.EnrolmentRetention)
			const expired = 300
			for i := range expired {
				e := enrol.Enrolment{Reference: fmt.Sprintf("X%04d", i), Profile: "p", Subject: map[string]string{},
					SecretHash: sha256.Sum256(nil), CreatedBy: "o", Created: now.Add(-90 * 24 * time.Hour), Expires: cutoff.Add(-time.Minute)}
				if err := s.InsertEnrolment(ctx, e, nil); err != nil {
					t.Fatal(err)
				}
			}
			valid := enrol.Enrolment{Reference: "VALID", Profile: "p", Subject: map[string]string{}, SecretHash: sha256.Sum256(nil),
				CreatedBy: "o", Created: now, Expires: now.Add(time.Hour)}
			if err := s.InsertEnrolment(ctx, valid, nil); err != nil {
				t.Fatal(err)
			}
			// A second connection pool to the same database: another instance.
			other := storetest.Open(t, cfg)
			var wg sync.WaitGroup
			var mu sync.Mutex
			var total int64
			for _, st := range []*store.Enrolments{s, other.Enrolments(), s, other.Enrolments()} {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for {
						n, err := st.PurgeEnrolments(ctx, cutoff, 25)
						if err != nil {
							t.Error(err)
							return
						}
						mu.Lock()
						total += n
						mu.Unlock()
						if n == 0 {
							return
						}
					}
				}()
			}
			wg.Wait()
			if n, _ := s.PurgeEnrolments(ctx, cutoff, 1000); total+n != expired {
				t.Fatalf("%d rows purged (+%d left), want %d", total, n, expired)
			}
			if _, err := s.GetEnrolment(ctx, "VALID"); err != nil {
				t.Fatalf("a valid enrolment purged: %v", err)
			}
		})
	}
}

// TestPurgeIdentityBacklog: a backlog larger than one batch (identity
// state left by nodes that were all down, or by a version before the
// bounded purge) goes entirely, batch after batch, and what has not
// expired stays.
func TestPurgeIdentityBacklog(t *testing.T) {
	for _, d := range storetest.Dialects() {
		t.Run(d.Name, func(t *testing.T) {
			ctx := t.Context()
			db := storetest.Open(t, d.NewConfig(t))
			s := db.Identity()
			now := time.Now().UTC()
			const expired = 2*1000 + 17 // more than two batches
			for i := range expired {
				if err := s.UseAssertion(ctx, fmt.Sprintf("client-%d", i%3), fmt.Sprintf("jti-%d", i), now.Add(-time.Minute)); err != nil {
					t.Fatal(err)
				}
			}
			if err := s.UseAssertion(ctx, "client-0", "live", now.Add(time.Minute)); err != nil {
				t.Fatal(err)
			}
			if n, err := s.Purge(ctx, now); err != nil || n != expired {
				t.Fatalf("purged %d, %v; want %d", n, err, expired)
			}
			// The live assertion ID is still refused as a replay; a purged one
			// may be recorded again.
			if err := s.UseAssertion(ctx, "client-0", "live", now.Add(time.Minute)); err == nil {
				t.Fatal("an unexpired assertion ID was purged")
			}
			if err := s.UseAssertion(ctx, "client-0", "jti-0", now.Add(time.Minute)); err != nil {
				t.Fatalf("a purged assertion ID: %v", err)
			}
		})
	}
}
