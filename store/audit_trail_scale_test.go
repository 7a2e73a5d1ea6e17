package store_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/thiqa/thiqa/internal/audit"
	"github.com/thiqa/thiqa/store"
	"github.com/thiqa/thiqa/store/storetest"
)

// appendObjects appends one record per object in objects, in one
// transaction.
func appendObjects(t testing.TB, db *store.DB, objects []string) {
	t.Helper()
	err := db.AppendAuditRecords(context.Background(), func(h audit.Head) ([]audit.Record, error) {
		recs := make([]audit.Record, len(objects))
		prev := h.Hash
		for i, o := range objects {
			r := audit.Record{Seq: h.Seq + int64(i) + 1, Time: time.Unix(1_700_000_000, int64(i)).UTC(), Actor: "org", Action: "signing.seal",
				Object: o, Outcome: audit.OutcomeSuccess, Details: []byte(`{}`), PrevHash: prev}
			r.Hash = audit.HashRecord(r)
			prev = r.Hash
			recs[i] = r
		}
		return recs, nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// TestTrailReadsBoundedRows checks that a certificate's audit trail reads
// at most limit records per object, however many records its credential
// has: a seal credential has millions.
func TestTrailReadsBoundedRows(t *testing.T) {
	const hot, limit = 3000, 10
	for _, d := range storetest.Dialects() {
		t.Run(d.Name, func(t *testing.T) {
			ctx := context.Background()
			db := storetest.Open(t, d.NewConfig(t))
			objs := make([]string, 0, 20*hot+3)
			for i := range hot {
				objs = append(objs, "cred-seal")
				if i%1000 == 0 {
					objs = append(objs, "SERIAL1")
				}
				for j := range 19 { // the seal credential is a twentieth of the log
					objs = append(objs, fmt.Sprintf("other-%d-%d", i, j))
				}
			}
			appendObjects(t, db, objs)
			got, err := db.Trail(ctx, []string{"SERIAL1", "cred-seal", "SERIAL1"}, limit)
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != limit {
				t.Fatalf("got %d records, want %d", len(got), limit)
			}
			for i := 1; i < len(got); i++ {
				if got[i].Seq >= got[i-1].Seq {
					t.Fatalf("records not newest first: %d then %d", got[i-1].Seq, got[i].Seq)
				}
			}
			q, args := store.TrailQuery([]string{"SERIAL1", "cred-seal"}, limit)
			if d.Name == store.DriverPostgres {
				if err := db.ExecTx(ctx, "ANALYZE audit_log"); err != nil {
					t.Fatal(err)
				}
				lines, err := db.QueryLines(ctx, "EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF) "+q, args...)
				if err != nil {
					t.Fatal(err)
				}
				// PostgreSQL: each object's scan under a Limit of its own
				// (Merge Append of them), so that no object's records are
				// all read and sorted.
				inner := 0
				for _, l := range lines {
					if strings.Contains(l, "->  Limit") {
						inner++
					}
				}
				if inner != 2 {
					t.Errorf("%d per-object limits for 2 objects:\n%s", inner, strings.Join(lines, "\n"))
				}
				return
			}
			lines, err := db.QueryLines(ctx, "EXPLAIN QUERY PLAN "+q, args...)
			if err != nil {
				t.Fatal(err)
			}
			// SQLite: each object read through the index, newest first, in
			// a co-routine of its own (bounded by its LIMIT); a sort at the
			// top level would sort every record of every object.
			searches := 0
			for _, l := range lines {
				f := strings.Fields(l)
				switch {
				case strings.Contains(l, "audit_log USING INDEX audit_log_object (object=?)"):
					searches++
				case strings.Contains(l, "audit_log"):
					t.Errorf("the trail reads audit_log other than through audit_log_object by object: %s", l)
				case strings.Contains(l, "TEMP B-TREE") && len(f) > 1 && f[1] == "0":
					t.Errorf("the trail sorts at the top level (every record of every object): %s", l)
				}
			}
			if searches != 2 {
				t.Errorf("%d index searches for 2 objects", searches)
			}
			if t.Failed() {
				t.Logf("plan:\n%s", strings.Join(lines, "\n"))
			}
		})
	}
}

// TestAuditRecordHash checks the point read of one record's hash.
func TestAuditRecordHash(t *testing.T) {
	for _, d := range storetest.Dialects() {
		t.Run(d.Name, func(t *testing.T) {
			ctx := context.Background()
			db := storetest.Open(t, d.NewConfig(t))
			appendObjects(t, db, []string{"a", "b", "c"})
			var want []byte
			err := db.AuditRecords(ctx, 2, func(r audit.Record) error {
				if r.Seq == 2 {
					want = r.Hash
				}
				return nil
			})
			if err != nil {
				t.Fatal(err)
			}
			if h, err := db.AuditRecordHash(ctx, 2); err != nil || string(h) != string(want) {
				t.Fatalf("AuditRecordHash(2) = %x, %v; want %x", h, err, want)
			}
			if h, err := db.AuditRecordHash(ctx, 4); err != nil || h != nil {
				t.Fatalf("AuditRecordHash(4) = %x, %v; want nil, nil", h, err)
			}
		})
	}
}
