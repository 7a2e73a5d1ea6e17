package store_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/thiqa/thiqa/internal/audit"
	"github.com/thiqa/thiqa/internal/pin"
	"github.com/thiqa/thiqa/store"
	"github.com/thiqa/thiqa/store/storetest"
)

// failCommitOf makes the COMMIT of a transaction that writes an audit
// record whose object is object fail (a deferred foreign key the record's
// insert breaks, checked only at COMMIT), until restore is called.
func failCommitOf(t *testing.T, db *store.DB, dialect, object string) (restore func()) {
	t.Helper()
	ctx := context.Background()
	stmts := []string{
		`CREATE TABLE test_commit_parent (id TEXT PRIMARY KEY)`,
		`CREATE TABLE test_commit_child (p TEXT REFERENCES test_commit_parent (id) DEFERRABLE INITIALLY DEFERRED)`,
		fmt.Sprintf(`CREATE TRIGGER test_fail_commit AFTER INSERT ON audit_log
	WHEN NEW.object = '%s' BEGIN INSERT INTO test_commit_child (p) VALUES ('none'); END`, object),
	}
	undo := []string{`DROP TRIGGER test_fail_commit`, `DROP TABLE test_commit_child`, `DROP TABLE test_commit_parent`}
	if dialect == store.DriverPostgres {
		stmts = append(stmts[:2], fmt.Sprintf(`CREATE FUNCTION test_fail_commit() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN IF NEW.object = '%s' THEN INSERT INTO test_commit_child (p) VALUES ('none'); END IF; RETURN NULL; END $$`, object),
			`CREATE TRIGGER test_fail_commit AFTER INSERT ON audit_log FOR EACH ROW EXECUTE FUNCTION test_fail_commit()`)
		undo = []string{`DROP TRIGGER test_fail_commit ON audit_log`, `DROP FUNCTION test_fail_commit()`, `DROP TABLE test_commit_child`, `DROP TABLE test_commit_parent`}
	}
	for _, q := range stmts {
		if err := db.ExecTx(ctx, q); err != nil {
			t.Fatal(err)
		}
	}
	return func() {
		t.Helper()
		for _, q := range undo {
			if err := db.ExecTx(ctx, q); err != nil {
				t.Fatal(err)
			}
		}
	}
}

// TestSealedRecordLostAtCommitCounted on SQLite and PostgreSQL: a change
// whose record was sealed in its transaction but whose COMMIT failed is
// answered as failed, changes nothing, and counts once in
// thiqa_audit_append_failures_total (the ThiqaAuditAppendFailed alert), and
// not in thiqa_audit_records_total; the retry commits with one record.
func TestSealedRecordLostAtCommitCounted(t *testing.T) {
	for _, d := range storetest.Dialects() {
		t.Run(d.Name, func(t *testing.T) {
			ctx := ctxT(t)
			db := storetest.Open(t, d.NewConfig(t))
			reg := prometheus.NewRegistry()
			log := audit.New(db, nil, reg, audit.Options{})
			t.Cleanup(log.Close)
			if err := db.Identity().EnrolMobileID(ctx, "cred-m", "12345678", time.Now()); err != nil {
				t.Fatal(err)
			}
			p := pin.DefaultParams()
			p.MemoryKiB, p.Time = 64, 1
			m, err := pin.New(db.Identity(), p)
			if err != nil {
				t.Fatal(err)
			}
			seal := func() audit.Sealer {
				s, err := log.Prepare(audit.Entry{Actor: "cli:op", Action: "oidc.mobile.enrol", Object: "cred-m", Outcome: audit.OutcomeSuccess})
				if err != nil {
					t.Fatal(err)
				}
				return s
			}
			restore := failCommitOf(t, db, d.Name, "cred-m")
			if err := m.SetRecorded(ctx, "cred-m", "482916", seal()); err == nil {
				t.Fatal("the PIN was set although its COMMIT failed")
			}
			restore()
			if got := counterValue(t, reg, "thiqa_audit_append_failures_total", nil); got != 1 {
				t.Fatalf("thiqa_audit_append_failures_total = %v after a failed COMMIT, want 1", got)
			}
			if got := counterValue(t, reg, "thiqa_audit_records_total", map[string]string{"outcome": "success"}); got != 0 {
				t.Fatalf("thiqa_audit_records_total{outcome=success} = %v, nothing was committed", got)
			}
			if err := m.Check(ctx, "cred-m", "482916"); !errors.Is(err, pin.ErrNotSet) {
				t.Fatalf("the PIN after the failed COMMIT: %v", err)
			}
			if err := m.SetRecorded(ctx, "cred-m", "482916", seal()); err != nil {
				t.Fatalf("retry: %v", err)
			}
			if all, n := auditRecordsIn(t, db, "oidc.mobile.enrol", "cred-m"); all != 1 || n != 1 {
				t.Fatalf("%d records, %d of the change; want 1 and 1", all, n)
			}
			if got := counterValue(t, reg, "thiqa_audit_append_failures_total", nil); got != 1 {
				t.Fatalf("thiqa_audit_append_failures_total = %v after the retry, want 1", got)
			}
			if rep, err := audit.Verify(ctx, db); err != nil || !rep.OK() {
				t.Fatalf("chain: %+v %v", rep, err)
			}
		})
	}
}

// TestSettledBatchRecordLostCountedOnce on SQLite and PostgreSQL: after a
// batch of certificate updates that had written a statement's record
// failed, the statement run on its own (settle, the PostgreSQL batch
// path) that ends failed counts exactly once in
// thiqa_audit_append_failures_total: when looking whether the batch took
// effect fails, when its own run fails before writing the record again,
// and (not twice) when its own COMMIT fails; a run that succeeds counts
// none and commits one record.
func TestSettledBatchRecordLostCountedOnce(t *testing.T) {
	for _, d := range storetest.Dialects() {
		t.Run(d.Name, func(t *testing.T) {
			ctx := ctxT(t)
			db := storetest.Open(t, d.NewConfig(t))
			reg := prometheus.NewRegistry()
			log := audit.New(db, nil, reg, audit.Options{})
			t.Cleanup(log.Close)
			for _, q := range []string{`CREATE TABLE test_settle (id TEXT PRIMARY KEY, v TEXT NOT NULL)`, `INSERT INTO test_settle (id, v) VALUES ('a', 'intent')`} {
				if err := db.ExecTx(ctx, q); err != nil {
					t.Fatal(err)
				}
			}
			certs := db.Certificates(nil)
			const (
				update = `UPDATE test_settle SET v = 'issued' WHERE id = ? AND v = 'intent'`
				look   = `SELECT 1 FROM test_settle WHERE id = ? AND v = 'issued'`
			)
			args := []any{"a"}
			seal := func() audit.Sealer {
				s, err := log.Prepare(audit.Entry{Actor: "ca", Action: "certificate.issue", Object: "settle-a", Outcome: audit.OutcomeSuccess})
				if err != nil {
					t.Fatal(err)
				}
				return s
			}
			failures := 0.0
			wantFailures := func(what string, more float64) {
				t.Helper()
				failures += more
				if got := counterValue(t, reg, "thiqa_audit_append_failures_total", nil); got != failures {
					t.Fatalf("%s: thiqa_audit_append_failures_total = %v, want %v", what, got, failures)
				}
			}

			if _, err := certs.SettleAfterBatch(ctx, true, update, args, `SELECT 1 FROM test_no_such_table WHERE id = ?`, args, seal()); err == nil {
				t.Fatal("settled although looking failed")
			}
			wantFailures("looking failed after a batch of unknown outcome", 1)
			if _, err := certs.SettleAfterBatch(ctx, true, `UPDATE test_no_such_table SET v = 'issued' WHERE id = ?`, args, look, args, seal()); err == nil {
				t.Fatal("settled although the statement failed")
			}
			wantFailures("its own run failed before its record, after a batch of unknown outcome", 1)
			if _, err := certs.SettleAfterBatch(ctx, false, `UPDATE test_no_such_table SET v = 'issued' WHERE id = ?`, args, look, args, seal()); err == nil {
				t.Fatal("settled although the statement failed")
			}
			wantFailures("its own run failed before its record, after a failed batch", 1)
			restore := failCommitOf(t, db, d.Name, "settle-a")
			if _, err := certs.SettleAfterBatch(ctx, false, update, args, look, args, seal()); err == nil {
				t.Fatal("settled although its COMMIT failed")
			}
			restore()
			wantFailures("its own COMMIT failed", 1)
			if n, err := certs.SettleAfterBatch(ctx, true, update, args, look, args, seal()); err != nil || n != 1 {
				t.Fatalf("settling: %d %v", n, err)
			}
			wantFailures("settled", 0)
			if all, n := auditRecordsIn(t, db, "certificate.issue", "settle-a"); all != 1 || n != 1 {
				t.Fatalf("%d records, %d of the change; want 1 and 1", all, n)
			}
			if rep, err := audit.Verify(ctx, db); err != nil || !rep.OK() {
				t.Fatalf("chain: %+v %v", rep, err)
			}
		})
	}
}
