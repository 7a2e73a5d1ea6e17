package store_test

import (
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/thiqa/thiqa/ca"
	"github.com/thiqa/thiqa/internal/audit"
	"github.com/thiqa/thiqa/policies"
	"github.com/thiqa/thiqa/store"
	"github.com/thiqa/thiqa/store/storetest"
)

// TestSQLiteBatchRecordLostCountedOnce: on SQLite, concurrent issuances
// are committed as one batch of prepared statements, and after a failed
// batch each on its own (PostgreSQL's batch path is settle's, see
// TestSettledBatchRecordLostCountedOnce). Two issuances whose batch wrote
// both records and then failed at COMMIT, and that then fail on their own,
// one at its COMMIT (after its record) and one before its record, count
// once each in thiqa_audit_append_failures_total.
func TestSQLiteBatchRecordLostCountedOnce(t *testing.T) {
	d := storetest.Dialects()[0]
	if d.Name != store.DriverSQLite {
		t.Fatalf("dialect %s, want SQLite", d.Name)
	}
	ctx := ctxT(t)
	db := storetest.Open(t, d.NewConfig(t))
	reg := prometheus.NewRegistry()
	log := audit.New(db, nil, reg, audit.Options{})
	t.Cleanup(log.Close)
	certs := db.Certificates(nil)
	var updates [][]any
	var seals []audit.Sealer
	for i, serial := range []string{"7f01", "7f02"} {
		in := ca.Intent{Serial: serial, CA: "citizen", Profile: "citizen-auth", TBSHash: [32]byte{31: byte(i + 1)}, KeyHash: [32]byte{byte(i + 1)},
			RequestedBy: "x", NotAfter: time.Now().Add(time.Hour), Created: time.Now()}
		if err := certs.InsertIntent(ctx, in); err != nil {
			t.Fatal(err)
		}
		updates = append(updates, []any{[]byte{0x30, byte(i)}, "CN=x", time.Now().Unix(), time.Now().Add(time.Hour).Unix(), nil, 0,
			time.Now().UnixNano(), "", serial, []byte{31: byte(i + 1)}, "citizen", "citizen-auth"})
		s, err := log.Prepare(audit.Entry{Actor: "ca", Action: string(policies.ActionIssueCertificate), Object: serial, Outcome: audit.OutcomeSuccess})
		if err != nil {
			t.Fatal(err)
		}
		seals = append(seals, s)
	}
	// 7f01's record breaks a deferred foreign key (every COMMIT that holds
	// it fails); 7f02 can be issued only after 7f01, in one transaction.
	restore := failCommitOf(t, db, d.Name, "7f01")
	if err := db.ExecTx(ctx, `CREATE TRIGGER test_fail_alone BEFORE UPDATE ON certificates
	WHEN NEW.serial = '7f02' AND (SELECT state FROM certificates WHERE serial = '7f01') <> 'issued'
	BEGIN SELECT RAISE(ABORT, 'test: 7f02 issued alone'); END`); err != nil {
		t.Fatal(err)
	}
	ns, errs := certs.IssueBatchAudited(ctx, updates, seals)
	if err := db.ExecTx(ctx, `DROP TRIGGER test_fail_alone`); err != nil {
		t.Fatal(err)
	}
	restore()
	for i := range errs {
		if errs[i] == nil || ns[i] != 0 {
			t.Fatalf("issuance %d: n %d, err %v; want a failure", i, ns[i], errs[i])
		}
	}
	if got := counterValue(t, reg, "thiqa_audit_append_failures_total", nil); got != 2 {
		t.Fatalf("thiqa_audit_append_failures_total = %v, want 2 (one per failed issuance)", got)
	}
	if got := counterValue(t, reg, "thiqa_audit_records_total", map[string]string{"outcome": "success"}); got != 0 {
		t.Fatalf("thiqa_audit_records_total{outcome=success} = %v, nothing was committed", got)
	}
	for _, serial := range []string{"7f01", "7f02"} {
		if _, n := auditRecordsIn(t, db, string(policies.ActionIssueCertificate), serial); n != 0 {
			t.Fatalf("%d records of %s", n, serial)
		}
	}
	if rep, err := audit.Verify(ctx, db); err != nil || !rep.OK() {
		t.Fatalf("chain: %+v %v", rep, err)
	}
}
