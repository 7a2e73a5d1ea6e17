package store_test

import (
	"strings"
	"testing"
	"time"

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
