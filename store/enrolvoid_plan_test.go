package store_test

import (
	"crypto/sha256"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/thiqa/thiqa/ca"
	"github.com/thiqa/thiqa/enrol"
	"github.com/thiqa/thiqa/store"
	"github.com/thiqa/thiqa/store/storetest"
)

// TestVoidQueriesIndexed on SQLite and PostgreSQL: the statements a void
// runs on the certificates under the enrolment's request ID read the
// unique index certificates_request_id, not the table (national in size),
// with the table filled and analysed.
func TestVoidQueriesIndexed(t *testing.T) {
	for _, d := range storetest.Dialects() {
		t.Run(d.Name, func(t *testing.T) {
			ctx := ctxT(t)
			db := storetest.Open(t, d.NewConfig(t))
			fill := `WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 20000)
				INSERT INTO certificates (serial, ca, profile, state, tbs_hash, key_hash, request_id, requested_by, not_after, created_at)
				SELECT printf('%08x', i), 'citizen', 'p', 'issued', x'00', randomblob(8), 'enrolment:r' || i, 'x', 0, 0 FROM n`
			if d.Name == store.DriverPostgres {
				fill = `INSERT INTO certificates (serial, ca, profile, state, tbs_hash, key_hash, request_id, requested_by, not_after, created_at)
				SELECT lpad(to_hex(i), 8, '0'), 'citizen', 'p', 'issued', '\x00'::bytea, decode(md5(i::text), 'hex'), 'enrolment:r' || i, 'x', 0, 0
				FROM generate_series(1, 20000) i`
			}
			if err := db.ExecTx(ctx, fill); err != nil {
				t.Fatal(err)
			}
			if err := db.ExecTx(ctx, "ANALYZE"); err != nil {
				t.Fatal(err)
			}
			abandon, check := store.VoidSQL()
			rid, cutoff := enrol.RequestID("r777"), time.Now().UnixNano()
			for _, c := range []struct {
				q    string
				args []any
			}{{abandon, []any{rid, cutoff}}, {check, []any{rid}}} {
				explain := "EXPLAIN QUERY PLAN "
				if d.Name == store.DriverPostgres {
					explain = "EXPLAIN (COSTS OFF) "
				}
				lines, err := db.QueryLines(ctx, explain+c.q, c.args...)
				if err != nil {
					t.Fatal(err)
				}
				plan := strings.Join(lines, "\n")
				if !strings.Contains(plan, "certificates_request_id") || strings.Contains(plan, "Seq Scan on certificates") ||
					strings.Contains(plan, "SCAN c ") || strings.Contains(plan, "SCAN certificates") {
					t.Errorf("%s\nreads the certificates table:\n%s", c.q, plan)
				}
				t.Logf("%s:\n%s", d.Name, plan)
			}
		})
	}
}

// TestVoidKeptForRetention on SQLite and PostgreSQL: a void enrolment is
// purged as a used one, EnrolmentRetention after its void, not before
// (an unexpired one; its validity ended with the void).
func TestVoidKeptForRetention(t *testing.T) {
	for _, d := range storetest.Dialects() {
		t.Run(d.Name, func(t *testing.T) {
			ctx := ctxT(t)
			s := storetest.Open(t, d.NewConfig(t)).Enrolments()
			created := time.Now().Add(-time.Hour).Truncate(time.Second)
			voided := created.Add(10 * time.Minute)
			e := enrol.Enrolment{Reference: "V0001", Profile: "citizen-auth", Subject: map[string]string{"commonName": "V0001"},
				SecretHash: sha256.Sum256([]byte("V0001")), CreatedBy: "officer", Created: created, Expires: created.Add(7 * 24 * time.Hour)}
			if err := s.InsertEnrolment(ctx, e, nil); err != nil {
				t.Fatal(err)
			}
			if err := s.VoidEnrolment(ctx, e.Reference, voided, voided.Add(-enrol.ClaimTimeout), nil); err != nil {
				t.Fatal(err)
			}
			// The purge at voided+retention deletes what went before the
			// cutoff: nothing yet.
			if n, err := s.PurgeEnrolments(ctx, voided, 10); err != nil || n != 0 {
				t.Fatalf("purge %s after the void: %d %v", enrol.EnrolmentRetention, n, err)
			}
			if got, err := s.GetEnrolment(ctx, e.Reference); err != nil || got.State != enrol.StateVoid || !got.Voided.Equal(voided) {
				t.Fatalf("kept: %+v %v", got, err)
			}
			if n, err := s.PurgeEnrolments(ctx, voided.Add(time.Second), 10); err != nil || n != 1 {
				t.Fatalf("purge past %s after the void: %d %v", enrol.EnrolmentRetention, n, err)
			}
		})
	}
}

// TestIntentAfterVoidAbandoned on SQLite and PostgreSQL: a request whose
// claim went stale before it recorded its intent, and whose enrolment was
// voided meanwhile (the void saw no intent), is refused at its intent
// (enrol.ErrVoid), which is abandoned: it signs and issues nothing under
// the void enrolment. An intent under an open enrolment is recorded.
func TestIntentAfterVoidAbandoned(t *testing.T) {
	for _, d := range storetest.Dialects() {
		t.Run(d.Name, func(t *testing.T) {
			ctx := ctxT(t)
			db := storetest.Open(t, d.NewConfig(t))
			s := db.Enrolments()
			now := time.Now()
			for i, ref := range []string{"V0002", "V0003"} {
				e := enrol.Enrolment{Reference: ref, Profile: "citizen-auth", Subject: map[string]string{"commonName": ref},
					SecretHash: sha256.Sum256([]byte(ref)), CreatedBy: "officer", Created: now, Expires: now.Add(time.Hour)}
				if err := s.InsertEnrolment(ctx, e, nil); err != nil {
					t.Fatal(err)
				}
				claimed := now.Add(-enrol.ClaimTimeout - time.Minute)
				if err := s.ClaimEnrolment(ctx, ref, "est:slow", claimed, claimed.Add(-enrol.ClaimTimeout)); err != nil {
					t.Fatal(err)
				}
				void := i == 0
				if void {
					if err := s.VoidEnrolment(ctx, ref, now, now.Add(-enrol.ClaimTimeout), nil); err != nil {
						t.Fatal(err)
					}
				}
				serial := fmt.Sprintf("7e58%02x", i)
				err := db.Certificates(nil).InsertIntent(ctx, ca.Intent{Serial: serial, CA: "citizen", Profile: "citizen-auth",
					KeyHash: sha256.Sum256([]byte(ref)), RequestID: enrol.RequestID(ref), RequestedBy: enrol.RequestID(ref),
					NotAfter: now.Add(time.Hour), Created: now})
				n, qerr := db.QueryInt64(ctx, `SELECT COUNT(*) FROM certificates WHERE serial = ? AND state = 'intent'`, serial)
				if qerr != nil {
					t.Fatal(qerr)
				}
				if void && (!errors.Is(err, enrol.ErrVoid) || n != 0) {
					t.Fatalf("intent under the void enrolment: %v, %d pending", err, n)
				}
				if !void && (err != nil || n != 1) {
					t.Fatalf("intent under an open enrolment: %v, %d pending", err, n)
				}
			}
		})
	}
}
