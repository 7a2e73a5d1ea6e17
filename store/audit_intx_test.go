package store_test

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/thiqa/thiqa/ca"
	"github.com/thiqa/thiqa/ca/crl"
	"github.com/thiqa/thiqa/ca/ocsp"
	"github.com/thiqa/thiqa/ca/revocation"
	"github.com/thiqa/thiqa/internal/audit"
	"github.com/thiqa/thiqa/policies"
	"github.com/thiqa/thiqa/store"
	"github.com/thiqa/thiqa/store/storetest"
)

// counterValue is the value of the counter name{labels} gathered from reg
// (0 when it has not been set).
func counterValue(t *testing.T, reg *prometheus.Registry, name string, labels map[string]string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	metric:
		for _, m := range mf.GetMetric() {
			for _, lp := range m.GetLabel() {
				if v, ok := labels[lp.GetName()]; ok && v != lp.GetValue() {
					continue metric
				}
			}
			return m.GetCounter().GetValue()
		}
	}
	return 0
}

// auditRecordsIn counts the records in db's chain, and those of action on object.
func auditRecordsIn(t *testing.T, db *store.DB, action, object string) (all, matching int) {
	t.Helper()
	if err := db.AuditRecords(context.Background(), 1, func(r audit.Record) error {
		all++
		if r.Action == action && r.Object == object && r.Outcome == audit.OutcomeSuccess {
			matching++
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return all, matching
}

// refuseAuditOf makes the database refuse the audit records whose object is
// object (as a full disk or a broken audit table would), until the returned
// function is called.
func refuseAuditOf(t *testing.T, db *store.DB, dialect, object string) (restore func()) {
	t.Helper()
	ctx := context.Background()
	stmts := []string{fmt.Sprintf(`CREATE TRIGGER test_refuse_audit BEFORE INSERT ON audit_log
	WHEN NEW.object = '%s' BEGIN SELECT RAISE(ABORT, 'test: audit record refused'); END`, object)}
	undo := []string{`DROP TRIGGER test_refuse_audit`}
	if dialect == store.DriverPostgres {
		stmts = []string{fmt.Sprintf(`CREATE FUNCTION test_refuse_audit() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN IF NEW.object = '%s' THEN RAISE EXCEPTION 'test: audit record refused'; END IF; RETURN NEW; END $$`, object),
			`CREATE TRIGGER test_refuse_audit BEFORE INSERT ON audit_log FOR EACH ROW EXECUTE FUNCTION test_refuse_audit()`}
		undo = []string{`DROP TRIGGER test_refuse_audit ON audit_log`, `DROP FUNCTION test_refuse_audit()`}
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

// TestKeyCompromiseRecordsCountedOnce on SQLite and PostgreSQL: the records
// a key compromise commits with its revocation and block are counted once
// in thiqa_audit_records_total, also when its second look finds no other
// certificate with the key (its transaction writes no record).
func TestKeyCompromiseRecordsCountedOnce(t *testing.T) {
	for _, d := range storetest.Dialects() {
		t.Run(d.Name, func(t *testing.T) {
			ctx := ctxT(t)
			db := storetest.Open(t, d.NewConfig(t))
			reg := prometheus.NewRegistry()
			log := audit.New(db, nil, reg, audit.Options{})
			t.Cleanup(log.Close)
			key := sha256.Sum256([]byte("compromised alone"))
			serial := serialN(21)
			seedKeyCert(t, db, serial, "citizen", "citizen-signing", "issued", key)
			records := func(c revocation.Change) (audit.Sealer, error) {
				return log.Prepare(audit.Entry{Actor: "officer-1", Action: "key.block", Object: store.SerialKey(serial), Outcome: audit.OutcomeSuccess},
					audit.Entry{Actor: "officer-1", Action: "certificate.revoke", Object: store.SerialKey(serial), Outcome: audit.OutcomeSuccess})
			}
			if _, err := db.Revocations().CompromiseKey(ctx, store.SerialKey(serial), "officer-1", time.Now(), records); err != nil {
				t.Fatal(err)
			}
			all, _ := auditRecordsIn(t, db, "", "")
			if got := counterValue(t, reg, "thiqa_audit_records_total", map[string]string{"outcome": "success"}); got != float64(all) {
				t.Fatalf("thiqa_audit_records_total{outcome=success} = %v, %d records committed", got, all)
			}
		})
	}
}

// TestRevocationRecordRefused on SQLite and PostgreSQL: when the database
// refuses a revocation's audit record, the revocation is rolled back, the
// failure counts in thiqa_audit_append_failures_total (ThiqaAuditAppendFailed
// fires, as when an append fails) and the records counter does not move;
// the client's retry, once the database takes records again, revokes the
// certificate with exactly one success record, and the chain verifies.
func TestRevocationRecordRefused(t *testing.T) {
	for _, d := range storetest.Dialects() {
		t.Run(d.Name, func(t *testing.T) {
			ctx := ctxT(t)
			db := storetest.Open(t, d.NewConfig(t))
			reg := prometheus.NewRegistry()
			log := audit.New(db, nil, reg, audit.Options{})
			t.Cleanup(log.Close)
			serial := serialN(22)
			key := store.SerialKey(serial)
			seedKeyCert(t, db, serial, "citizen", "citizen-signing", "issued", sha256.Sum256([]byte("refused record")))
			records := func(c revocation.Change) (audit.Sealer, error) {
				return log.Prepare(audit.Entry{Actor: "officer-1", Action: string(policies.ActionRevokeCertificate), Object: key, Outcome: audit.OutcomeSuccess})
			}
			restore := refuseAuditOf(t, db, d.Name, key)
			if _, err := db.Revocations().Revoke(ctx, key, crl.ReasonSuperseded, "officer-1", time.Now(), records); err == nil {
				t.Fatal("revoked without its record")
			}
			if st, err := db.Revocations().Status(ctx, "citizen", serial); err != nil || st.State != ocsp.Good {
				t.Fatalf("status after the refused record: %+v %v", st, err)
			}
			if got := counterValue(t, reg, "thiqa_audit_append_failures_total", nil); got != 1 {
				t.Fatalf("thiqa_audit_append_failures_total = %v, want 1", got)
			}
			if got := counterValue(t, reg, "thiqa_audit_records_total", map[string]string{"outcome": "success"}); got != 0 {
				t.Fatalf("thiqa_audit_records_total{outcome=success} = %v before any commit", got)
			}
			restore()
			if _, err := db.Revocations().Revoke(ctx, key, crl.ReasonSuperseded, "officer-1", time.Now(), records); err != nil {
				t.Fatalf("retry: %v", err)
			}
			all, revoked := auditRecordsIn(t, db, string(policies.ActionRevokeCertificate), key)
			if revoked != 1 || all != 1 {
				t.Fatalf("%d certificate.revoke records of %s, %d records in all; want 1 and 1", revoked, key, all)
			}
			if got := counterValue(t, reg, "thiqa_audit_records_total", map[string]string{"outcome": "success"}); got != 1 {
				t.Fatalf("thiqa_audit_records_total{outcome=success} = %v, want 1", got)
			}
			if rep, err := audit.Verify(ctx, db); err != nil || !rep.OK() {
				t.Fatalf("chain: %+v %v", rep, err)
			}
		})
	}
}

// TestIssueBatchAnswersEachUpdate on SQLite and PostgreSQL: in one batch of
// audited certificate updates, two for the same serial (a duplicate call)
// issue it once, with one success record and the DER of the update that
// is answered issued; an update whose record cannot be sealed fails alone
// (its intent stays pending) and the others are issued with their records.
func TestIssueBatchAnswersEachUpdate(t *testing.T) {
	for _, d := range storetest.Dialects() {
		t.Run(d.Name, func(t *testing.T) {
			ctx := ctxT(t)
			db := storetest.Open(t, d.NewConfig(t))
			log := audit.New(db, nil, nil, audit.Options{})
			t.Cleanup(log.Close)
			certs := db.Certificates(nil)
			var updates [][]any
			var seals []audit.Sealer
			add := func(serial string, tbs byte, der []byte, seal audit.Sealer) {
				updates = append(updates, []any{der, "CN=x", time.Now().Unix(), time.Now().Add(time.Hour).Unix(), nil, 0,
					time.Now().UnixNano(), "", serial, []byte{31: tbs}, "citizen", "citizen-auth"})
				seals = append(seals, seal)
			}
			prepare := func(serial, actor string) audit.Sealer {
				s, err := log.Prepare(audit.Entry{Actor: actor, Action: string(policies.ActionIssueCertificate), Object: serial, Outcome: audit.OutcomeSuccess})
				if err != nil {
					t.Fatal(err)
				}
				return s
			}
			for i, serial := range []string{"7e01", "7e02", "7e03"} {
				in := ca.Intent{Serial: serial, CA: "citizen", Profile: "citizen-auth", TBSHash: [32]byte{31: byte(i + 1)}, KeyHash: [32]byte{byte(i + 1)},
					RequestedBy: "x", NotAfter: time.Now().Add(time.Hour), Created: time.Now()}
				if err := certs.InsertIntent(ctx, in); err != nil {
					t.Fatal(err)
				}
			}
			add("7e01", 1, []byte{0x30, 1}, prepare("7e01", "first"))
			add("7e01", 1, []byte{0x30, 2}, prepare("7e01", "second")) // the same serial again
			add("7e02", 2, []byte{0x30, 3}, audit.SealerFunc(func(audit.Head) ([]audit.Record, error) {
				return nil, errors.New("test: record refused")
			}))
			add("7e03", 3, []byte{0x30, 4}, prepare("7e03", "third"))
			ns, errs := certs.IssueBatchAudited(ctx, updates, seals)
			if ns[0]+ns[1] != 1 || errs[0] != nil || errs[1] != nil {
				t.Errorf("the two updates of 7e01: n %v, errs %v; want exactly one issued", ns[:2], errs[:2])
			}
			if ns[2] != 0 || errs[2] == nil {
				t.Errorf("the update whose record was refused: n %d, err %v", ns[2], errs[2])
			}
			if ns[3] != 1 || errs[3] != nil {
				t.Errorf("7e03: n %d, err %v", ns[3], errs[3])
			}
			if rec, err := certs.GetCertificate(ctx, "7e01"); err != nil || (ns[0] == 1 && rec.DER[1] != 1) || (ns[1] == 1 && rec.DER[1] != 2) {
				t.Errorf("7e01 stored %x (%v), answered n %v", rec.DER, err, ns[:2])
			}
			if n, err := db.QueryInt64(ctx, "SELECT COUNT(*) FROM certificates WHERE serial = '7e02' AND state = 'intent'"); err != nil || n != 1 {
				t.Errorf("7e02 not left pending: %d %v", n, err)
			}
			for serial, want := range map[string]int{"7e01": 1, "7e02": 0, "7e03": 1} {
				if _, got := auditRecordsIn(t, db, string(policies.ActionIssueCertificate), serial); got != want {
					t.Errorf("%d success records of %s, want %d", got, serial, want)
				}
			}

			// A batch that commits as a whole (no record refused), with the
			// same serial twice.
			in := ca.Intent{Serial: "7e04", CA: "citizen", Profile: "citizen-auth", TBSHash: [32]byte{31: 4}, KeyHash: [32]byte{4},
				RequestedBy: "x", NotAfter: time.Now().Add(time.Hour), Created: time.Now()}
			if err := certs.InsertIntent(ctx, in); err != nil {
				t.Fatal(err)
			}
			updates, seals = nil, nil
			add("7e04", 4, []byte{0x30, 5}, prepare("7e04", "first"))
			add("7e04", 4, []byte{0x30, 6}, prepare("7e04", "second"))
			ns, errs = certs.IssueBatchAudited(ctx, updates, seals)
			if ns[0]+ns[1] != 1 || errs[0] != nil || errs[1] != nil {
				t.Errorf("the two updates of 7e04: n %v, errs %v; want exactly one issued", ns, errs)
			}
			if rec, err := certs.GetCertificate(ctx, "7e04"); err != nil || (ns[0] == 1 && rec.DER[1] != 5) || (ns[1] == 1 && rec.DER[1] != 6) {
				t.Errorf("7e04 stored %x (%v), answered n %v", rec.DER, err, ns)
			}
			if _, got := auditRecordsIn(t, db, string(policies.ActionIssueCertificate), "7e04"); got != 1 {
				t.Errorf("%d success records of 7e04, want 1", got)
			}
			if rep, err := audit.Verify(ctx, db); err != nil || !rep.OK() {
				t.Fatalf("chain: %+v %v", rep, err)
			}
		})
	}
}
