package store_test

import (
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/thiqa/thiqa/enrol"
	"github.com/thiqa/thiqa/internal/audit"
	"github.com/thiqa/thiqa/internal/audit/audittest"
	"github.com/thiqa/thiqa/store/storetest"
)

// TestMigration0029KeepsTransactions on SQLite and PostgreSQL: a database
// at migration 0028 with CMP transactions in every state of that release
// is upgraded (SQLite rebuilds the table): every row is kept as it was,
// the indexes of 0019, 0021 and 0024 are there again, the sweeps claim
// what they claimed before, a follow-up can end "failed" (which no sweep
// claims and the purge deletes after the cutoff), and a state no release
// writes is still refused.
func TestMigration0029KeepsTransactions(t *testing.T) {
	for _, d := range storetest.Dialects() {
		t.Run(d.Name, func(t *testing.T) {
			ctx := t.Context()
			cfg := d.NewConfig(t)
			db := storetest.Open(t, cfg)
			s := db.Enrolments()
			now := time.Now().UTC().Truncate(time.Second)
			states := []string{"waiting", "expiring", "expired", "confirmed", "rejected", "implicit", "unconfirmed", "rejecting", "confirming"}
			for i, state := range states {
				created := now.Add(-time.Hour + time.Duration(i)*time.Second)
				if err := s.InsertTransaction(ctx, enrol.Transaction{ID: state, Sender: "ref:" + state, Serial: "0a" + state, Created: created,
					State: state, Closed: created.Add(time.Second)}); err != nil {
					t.Fatal(err)
				}
			}
			if err := db.ExecTx(ctx, `UPDATE cmp_transactions SET closed_at = NULL WHERE state = 'waiting'`); err != nil {
				t.Fatal(err)
			}
			// Back to 0028: the table and constraint of 0024.
			back := []string{`ALTER TABLE cmp_transactions DROP CONSTRAINT cmp_transactions_state_check`,
				`ALTER TABLE cmp_transactions ADD CONSTRAINT cmp_transactions_state_check
				CHECK (state IN ('waiting', 'confirmed', 'rejected', 'implicit', 'expiring', 'expired', 'unconfirmed', 'rejecting', 'confirming'))`}
			if d.Name != "postgres" {
				back = []string{`CREATE TABLE cmp_transactions_old (
					transaction_id TEXT    PRIMARY KEY,
					sender         TEXT    NOT NULL,
					serial         TEXT    NOT NULL,
					cert_hash      BLOB    NOT NULL,
					created_at     INTEGER NOT NULL,
					state          TEXT    NOT NULL CHECK (state IN ('waiting', 'confirmed', 'rejected', 'implicit', 'expiring', 'expired', 'unconfirmed', 'rejecting', 'confirming')),
					closed_at      INTEGER)`,
					`INSERT INTO cmp_transactions_old SELECT transaction_id, sender, serial, cert_hash, created_at, state, closed_at FROM cmp_transactions`,
					`DROP TABLE cmp_transactions`,
					`ALTER TABLE cmp_transactions_old RENAME TO cmp_transactions`,
					`CREATE INDEX cmp_transactions_created ON cmp_transactions (created_at)`,
					`CREATE INDEX cmp_transactions_open ON cmp_transactions (created_at) WHERE state IN ('waiting', 'expiring')`,
					`CREATE INDEX cmp_transactions_follow_up ON cmp_transactions (closed_at) WHERE state IN ('rejecting', 'confirming')`}
			}
			back = append(back, `DELETE FROM schema_migrations WHERE version = '0029_cmp_follow_up_failed'`)
			for _, q := range back {
				if err := db.ExecTx(ctx, q); err != nil {
					t.Fatalf("%s: %v", q, err)
				}
			}
			if err := db.ExecTx(ctx, `UPDATE cmp_transactions SET state = 'failed' WHERE transaction_id = 'rejecting'`); err == nil {
				t.Fatal("the database at 0028 took state failed: the test does not start from 0028")
			}
			before := map[string]*enrol.Transaction{}
			for _, id := range states {
				tx, err := s.GetTransaction(ctx, id)
				if err != nil {
					t.Fatal(err)
				}
				before[id] = tx
			}

			db = storetest.Open(t, cfg) // the upgrade: applies 0029
			s = db.Enrolments()
			for id, want := range before {
				if got, err := s.GetTransaction(ctx, id); err != nil || *got != *want {
					t.Fatalf("%s after the upgrade: %+v %v, want %+v", id, got, err, want)
				}
			}
			indexes := `SELECT COUNT(*) FROM sqlite_master WHERE type = 'index' AND tbl_name = 'cmp_transactions'
				AND name IN ('cmp_transactions_created', 'cmp_transactions_open', 'cmp_transactions_follow_up')`
			if d.Name == "postgres" {
				indexes = `SELECT COUNT(*) FROM pg_indexes WHERE tablename = 'cmp_transactions'
					AND indexname IN ('cmp_transactions_created', 'cmp_transactions_open', 'cmp_transactions_follow_up')`
			}
			if n, err := db.QueryInt64(ctx, indexes); err != nil || n != 3 {
				t.Fatalf("%d of the 3 indexes after the upgrade, %v", n, err)
			}
			if err := db.ExecTx(ctx, `UPDATE cmp_transactions SET state = 'closed' WHERE transaction_id = 'rejected'`); err == nil {
				t.Fatal("a state no release writes was taken after the upgrade")
			}

			// The sweeps claim what they did; what ends failed is left.
			for _, id := range []string{"rejecting", "confirming", "expiring"} {
				if err := s.FailFollowUp(ctx, id, now, nil); err != nil {
					t.Fatalf("FailFollowUp(%s): %v", id, err)
				}
			}
			for _, id := range []string{"waiting", "expired", "confirmed", "rejected", "implicit", "unconfirmed", "failed-never"} {
				if err := s.FailFollowUp(ctx, id, now, nil); !errors.Is(err, enrol.ErrNoTransaction) {
					t.Fatalf("FailFollowUp(%s): %v, want ErrNoTransaction", id, err)
				}
			}
			later := now.Add(time.Hour)
			if got, err := s.ClaimFollowUps(ctx, later, later, 100); err != nil || len(got) != 0 {
				t.Fatalf("follow-up sweep claimed %v, %v; want none", ids(got), err)
			}
			got, err := s.ClaimUnconfirmed(ctx, later.Add(-enrol.ConfirmWaitTime), later.Add(-enrol.ExpiryLease), later, 100)
			if err != nil || !slices.Equal(ids(got), []string{"waiting"}) {
				t.Fatalf("unconfirmed sweep claimed %v, %v; want [waiting]", ids(got), err)
			}
			if n, err := db.QueryInt64(ctx, `SELECT COUNT(*) FROM cmp_transactions WHERE state = 'failed'`); err != nil || n != 3 {
				t.Fatalf("%d failed, %v; want 3", n, err)
			}
			// The purge deletes the closed ones, failed included, before the cutoff.
			if _, err := s.PurgeTransactions(ctx, now.Add(time.Second), 100); err != nil {
				t.Fatal(err)
			}
			if n, err := db.QueryInt64(ctx, `SELECT COUNT(*) FROM cmp_transactions WHERE state = 'failed'`); err != nil || n != 0 {
				t.Fatalf("%d failed after the purge, %v; want 0", n, err)
			}
			if _, err := s.GetTransaction(ctx, "waiting"); err != nil {
				t.Fatalf("the purge deleted an open transaction: %v", err)
			}
		})
	}
}

// TestFailFollowUpRecordedWithItsState on SQLite and PostgreSQL: a CMP
// follow-up recorded as failed for good and its cmp.followup.failed
// record are committed together or not at all. While the record cannot
// be written (its transaction fails after the UPDATE), the transaction
// stays as it was, for the sweep to give it up again; once it can, the
// state and one record are committed; a transaction no longer undone
// (given up, or done, by another) gets no record.
func TestFailFollowUpRecordedWithItsState(t *testing.T) {
	for _, d := range storetest.Dialects() {
		t.Run(d.Name, func(t *testing.T) {
			ctx := ctxT(t)
			db := storetest.Open(t, d.NewConfig(t))
			log := audit.New(db, nil, nil, audit.Options{})
			t.Cleanup(log.Close)
			gate := audittest.New(log)
			s := db.Enrolments()
			now := time.Now().UTC().Truncate(time.Second)
			for _, state := range []string{"rejecting", "confirming", "expiring"} {
				if err := s.InsertTransaction(ctx, enrol.Transaction{ID: state, Sender: "ref:" + state, Serial: "0a" + state,
					Created: now.Add(-time.Hour), State: "waiting"}); err != nil {
					t.Fatal(err)
				}
				if err := s.CloseTransaction(ctx, state, state, now.Add(-time.Minute)); err != nil {
					t.Fatal(err)
				}
			}
			fail := func(id string) error {
				seal, err := gate.Prepare(audit.Entry{Actor: "thiqa-serve", Action: "cmp.followup.failed", Object: "0a" + id,
					Outcome: audit.OutcomeFailure, Details: map[string]any{"transactionID": id}})
				if err != nil {
					t.Fatal(err)
				}
				return s.FailFollowUp(ctx, id, now, seal)
			}
			records := func() int { return storetest.AuditCount(t, db, "cmp.followup.failed", audit.OutcomeFailure) }

			gate.Down.Store(true)
			for _, id := range []string{"rejecting", "confirming", "expiring"} {
				if err := fail(id); err == nil || errors.Is(err, enrol.ErrNoTransaction) {
					t.Fatalf("FailFollowUp(%s) with its record failing: %v, want the failure", id, err)
				}
				if got, err := s.GetTransaction(ctx, id); err != nil || got.State != id {
					t.Fatalf("%s after its record failed: %+v %v, want it unchanged", id, got, err)
				}
			}
			if n := records(); n != 0 {
				t.Fatalf("%d records while they cannot be written", n)
			}

			gate.Down.Store(false)
			for _, id := range []string{"rejecting", "confirming", "expiring"} {
				if err := fail(id); err != nil {
					t.Fatalf("FailFollowUp(%s): %v", id, err)
				}
				if got, err := s.GetTransaction(ctx, id); err != nil || got.State != "failed" {
					t.Fatalf("%s: %+v %v, want failed", id, got, err)
				}
				if err := fail(id); !errors.Is(err, enrol.ErrNoTransaction) {
					t.Fatalf("FailFollowUp(%s) again: %v, want ErrNoTransaction", id, err)
				}
			}
			if n := records(); n != 3 {
				t.Fatalf("%d cmp.followup.failed records, want 3 (one each, none for the second try)", n)
			}
		})
	}
}
