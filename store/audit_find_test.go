package store_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/thiqa/thiqa/internal/audit"
	"github.com/thiqa/thiqa/store"
	"github.com/thiqa/thiqa/store/storetest"
)

// findBase is the time of record 0 of findLog; record seq is made seq
// seconds after it.
var findBase = time.Date(2026, 11, 5, 10, 0, 0, 0, time.UTC)

// findLog appends the records of the search tests: seq i+1 is rows[i]
// (actor, action, object, outcome), made i+1 seconds after findBase.
func findLog(t testing.TB, db *store.DB, rows [][4]string) {
	t.Helper()
	err := db.AppendAuditRecords(context.Background(), func(h audit.Head) ([]audit.Record, error) {
		recs := make([]audit.Record, len(rows))
		prev := h.Hash
		for i, f := range rows {
			seq := h.Seq + int64(i) + 1
			r := audit.Record{Seq: seq, Time: findBase.Add(time.Duration(seq) * time.Second), Actor: f[0], Action: f[1],
				Object: f[2], Outcome: f[3], Details: fmt.Appendf(nil, `{"i": %d}`, seq), PrevHash: prev}
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

// findRows are the records of TestFindAuditRecords, seq 1 to 8.
var findRows = [][4]string{
	{"ra:officer-1", "certificate.issue", "S1", "success"},  // 1
	{"ra:officer-1", "enrolment.use", "R1", "success"},      // 2
	{"ra:officer-2", "certificate.issue", "S2", "failure"},  // 3
	{"ra:officer-2", "certificate.revoke", "S1", "success"}, // 4
	{"system", "cmp.followup.failed", "S2", "failure"},      // 5
	{"citizen:1", "signing.authorize", "cred-1", "refused"}, // 6
	{"ra:officer-1", "certificate.issue", "S3", "success"},  // 7
	{"citizen:1", "identity.login", "", "success"},          // 8
}

// seqs returns the seqs of recs.
func seqs(recs []audit.Record) []int64 {
	out := make([]int64, len(recs))
	for i, r := range recs {
		out[i] = r.Seq
	}
	return out
}

// TestFindAuditRecords checks each condition of a search, the two
// orders, the limit, the time bounds (since inclusive, until exclusive)
// and a search that matches nothing, on both databases.
func TestFindAuditRecords(t *testing.T) {
	at := func(seq int) time.Time { return findBase.Add(time.Duration(seq) * time.Second) }
	cases := []struct {
		name string
		q    audit.Query
		want []int64
	}{
		{"all", audit.Query{}, []int64{8, 7, 6, 5, 4, 3, 2, 1}},
		{"oldest first", audit.Query{OldestFirst: true}, []int64{1, 2, 3, 4, 5, 6, 7, 8}},
		{"limit newest", audit.Query{Limit: 3}, []int64{8, 7, 6}},
		{"limit oldest", audit.Query{Limit: 3, OldestFirst: true}, []int64{1, 2, 3}},
		{"seq", audit.Query{Seq: 4}, []int64{4}},
		{"seq absent", audit.Query{Seq: 99}, []int64{}},
		{"from seq", audit.Query{FromSeq: 6}, []int64{8, 7, 6}},
		{"from seq oldest first, limit", audit.Query{FromSeq: 3, Limit: 2, OldestFirst: true}, []int64{3, 4}},
		{"object", audit.Query{Object: "S1"}, []int64{4, 1}},
		{"actor", audit.Query{Actor: "ra:officer-1"}, []int64{7, 2, 1}},
		{"action", audit.Query{Actions: []string{"certificate.issue"}}, []int64{7, 3, 1}},
		{"actions", audit.Query{Actions: []string{"enrolment.use", "cmp.followup.failed"}}, []int64{5, 2}},
		{"actions merged, limit", audit.Query{Actions: []string{"certificate.revoke", "certificate.issue", "enrolment.use"}, Limit: 3}, []int64{7, 4, 3}},
		{"actions merged, oldest first, since", audit.Query{Actions: []string{"certificate.issue", "enrolment.use", "certificate.revoke"}, Since: at(2), Limit: 3, OldestFirst: true}, []int64{2, 3, 4}},
		{"action named twice", audit.Query{Actions: []string{"certificate.issue", "certificate.issue"}}, []int64{7, 3, 1}},
		{"outcome", audit.Query{Outcome: "failure"}, []int64{5, 3}},
		{"since inclusive", audit.Query{Since: at(6)}, []int64{8, 7, 6}},
		{"until exclusive", audit.Query{Until: at(3)}, []int64{2, 1}},
		{"since and until", audit.Query{Since: at(3), Until: at(5)}, []int64{4, 3}},
		{"all conditions", audit.Query{FromSeq: 2, Actions: []string{"certificate.issue", "enrolment.use"}, Actor: "ra:officer-1", Outcome: "success", Since: at(1), Until: at(8)}, []int64{7, 2}},
		{"object and action", audit.Query{Object: "S2", Actions: []string{"cmp.followup.failed"}}, []int64{5}},
		{"no match", audit.Query{Object: "S1", Actor: "citizen:1"}, []int64{}},
		{"empty object", audit.Query{Actor: "citizen:1", Actions: []string{"identity.login"}}, []int64{8}},
	}
	for _, d := range storetest.Dialects() {
		t.Run(d.Name, func(t *testing.T) {
			ctx := ctxT(t)
			db := storetest.Open(t, d.NewConfig(t))
			findLog(t, db, findRows)
			for _, c := range cases {
				q := c.q
				if q.Limit == 0 {
					q.Limit = 50
				}
				got, err := db.FindAuditRecords(ctx, q)
				if err != nil {
					t.Fatalf("%s: %v", c.name, err)
				}
				if s := seqs(got); !slices.Equal(s, c.want) {
					t.Errorf("%s: got seqs %v, want %v", c.name, s, c.want)
				}
			}
			// The records come back whole: the hashes chain and verify.
			got, err := db.FindAuditRecords(ctx, audit.Query{Seq: 2, Limit: 1})
			if err != nil || len(got) != 1 {
				t.Fatalf("seq 2: %v %v", got, err)
			}
			r := got[0]
			if !r.Time.Equal(at(2)) || r.Actor != "ra:officer-1" || r.Action != "enrolment.use" || r.Object != "R1" || r.Outcome != "success" ||
				string(r.Details) != `{"i": 2}` || string(audit.HashRecord(r)) != string(r.Hash) || len(r.PrevHash) != audit.HashSize {
				t.Errorf("record 2 read back as %+v", r)
			}
		})
	}
}

// TestFindRecordsTheRead checks audit.Find over the store: it returns
// the records, says when more match, and leaves an audit.read record
// with the query and the number returned, also when nothing matched;
// when the record cannot be appended it returns no record.
func TestFindRecordsTheRead(t *testing.T) {
	for _, d := range storetest.Dialects() {
		t.Run(d.Name, func(t *testing.T) {
			ctx := ctxT(t)
			db := storetest.Open(t, d.NewConfig(t))
			findLog(t, db, findRows)
			log := audit.New(db, slog.New(slog.DiscardHandler), nil, audit.Options{})
			defer log.Close()

			f, err := audit.Find(ctx, db, db, log, "cli:op", audit.Query{Actions: []string{"certificate.issue"}, Limit: 2})
			if err != nil {
				t.Fatal(err)
			}
			if s := seqs(f.Records); !slices.Equal(s, []int64{7, 3}) || !f.More || f.ArchivedBelow != 0 {
				t.Fatalf("found %v, more %v, archived below %d; want [7 3], more, 0", s, f.More, f.ArchivedBelow)
			}
			read := lastRecord(t, db)
			if read.Seq != 9 || read.Action != audit.ReadAction || read.Actor != "cli:op" || read.Object != "" || read.Outcome != "success" {
				t.Fatalf("the search left %+v", read)
			}
			var det struct {
				Query    audit.Query `json:"query"`
				Returned int         `json:"returned"`
			}
			if err := json.Unmarshal(read.Details, &det); err != nil || det.Returned != 2 || !slices.Equal(det.Query.Actions, []string{"certificate.issue"}) || det.Query.Limit != 2 {
				t.Fatalf("details %s (%v)", read.Details, err)
			}

			// The default limit, no more; the read of an object names it.
			f, err = audit.Find(ctx, db, db, log, "cli:op", audit.Query{Object: "S1"})
			if err != nil || !slices.Equal(seqs(f.Records), []int64{4, 1}) || f.More {
				t.Fatalf("by object: %v more %v, %v", seqs(f.Records), f.More, err)
			}
			if read := lastRecord(t, db); read.Seq != 10 || read.Object != "S1" || !strings.Contains(string(read.Details), `"returned":2`) {
				t.Fatalf("the search by object left %+v (%s)", read, read.Details)
			}

			// Nothing matches: still recorded, with 0.
			f, err = audit.Find(ctx, db, db, log, "cli:op", audit.Query{Object: "nothing"})
			if err != nil || len(f.Records) != 0 {
				t.Fatalf("no match: %v, %v", seqs(f.Records), err)
			}
			if read := lastRecord(t, db); read.Seq != 11 || !strings.Contains(string(read.Details), `"returned":0`) {
				t.Fatalf("the empty search left %+v (%s)", read, read.Details)
			}

			// A bad query is refused before anything is read or recorded.
			for _, q := range []audit.Query{{Limit: audit.MaxFindLimit + 1}, {Limit: -1}, {Seq: 1, FromSeq: 2}, {Since: findBase, Until: findBase}, {Actions: []string{""}}} {
				if _, err := audit.Find(ctx, db, db, log, "cli:op", q); !errors.Is(err, audit.ErrBadQuery) {
					t.Errorf("%+v: err %v, want ErrBadQuery", q, err)
				}
			}
			if read := lastRecord(t, db); read.Seq != 11 {
				t.Fatalf("a refused query was recorded: %+v", read)
			}

			// The log cannot append: no record is handed out.
			closed := audit.New(db, slog.New(slog.DiscardHandler), nil, audit.Options{})
			closed.Close()
			f, err = audit.Find(ctx, db, db, closed, "cli:op", audit.Query{Object: "S1"})
			if !errors.Is(err, audit.ErrReadNotRecorded) || f.Records != nil {
				t.Fatalf("unrecorded search: %d records, err %v; want none, ErrReadNotRecorded", len(f.Records), err)
			}
		})
	}
}

// lastRecord returns the newest record of db.
func lastRecord(t testing.TB, db *store.DB) audit.Record {
	t.Helper()
	recs, err := db.FindAuditRecords(context.Background(), audit.Query{Limit: 1})
	if err != nil || len(recs) != 1 {
		t.Fatalf("reading the newest record: %v %v", recs, err)
	}
	return recs[0]
}

// TestFindArchivedNote checks that Find says when a search reaches the
// records moved to an archive file, and only then: by seq and by time.
func TestFindArchivedNote(t *testing.T) {
	for _, d := range storetest.Dialects() {
		t.Run(d.Name, func(t *testing.T) {
			ctx := ctxT(t)
			db := storetest.Open(t, d.NewConfig(t))
			log := audit.New(db, slog.New(slog.DiscardHandler), nil, audit.Options{})
			defer log.Close()
			rows := make([][4]string, 40)
			for i := range rows {
				rows[i] = [4]string{"ra:officer-1", "certificate.issue", "S1", "success"}
			}
			findLog(t, db, rows[:30])
			find := func(q audit.Query) audit.Found {
				t.Helper()
				f, err := audit.Find(ctx, db, db, log, "cli:op", q)
				if err != nil {
					t.Fatal(err)
				}
				return f
			}
			if f := find(audit.Query{Object: "S1"}); f.ArchivedBelow != 0 {
				t.Fatalf("nothing archived yet, but ArchivedBelow %d", f.ArchivedBelow)
			}
			key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
			if err != nil {
				t.Fatal(err)
			}
			dir := t.TempDir()
			cps, pub := filepath.Join(dir, "cp.jsonl"), filepath.Join(dir, "cp.pem")
			if err := audit.PublishCheckpointKey(pub, key.Public()); err != nil {
				t.Fatal(err)
			}
			w, err := audit.NewCheckpointWriter(db, key, cps, audit.CheckpointWriterOptions{})
			if err != nil {
				t.Fatal(err)
			}
			if _, _, err := w.Checkpoint(ctx); err != nil { // at seq 31 (the read above)
				t.Fatal(err)
			}
			findLog(t, db, rows[31:])
			res, err := audit.Archive(ctx, db, audit.ArchiveOptions{Through: 31, Out: filepath.Join(dir, "a.jsonl.gz"), CheckpointFile: cps, CheckpointKeyFile: pub})
			if err != nil || res.Row.LastSeq != 31 {
				t.Fatalf("Archive: %+v %v", res.Row, err)
			}
			// The first live record, 32, was made at findBase+32s.
			for _, c := range []struct {
				name string
				q    audit.Query
				want int64
			}{
				{"whole log", audit.Query{Object: "S1"}, 32},
				{"archived seq", audit.Query{Seq: 5}, 32},
				{"live seq", audit.Query{Seq: 33}, 0},
				{"from an archived seq", audit.Query{FromSeq: 31}, 32},
				{"from the first live seq", audit.Query{FromSeq: 32}, 0},
				{"since before the live records", audit.Query{Since: findBase.Add(31 * time.Second)}, 32},
				{"since the first live record", audit.Query{Since: findBase.Add(32 * time.Second)}, 0},
			} {
				if f := find(c.q); f.ArchivedBelow != c.want {
					t.Errorf("%s: ArchivedBelow %d, want %d", c.name, f.ArchivedBelow, c.want)
				}
			}
			// Only live records are returned.
			if f := find(audit.Query{Actions: []string{"certificate.issue"}, OldestFirst: true, Limit: 1}); len(f.Records) != 1 || f.Records[0].Seq != 32 {
				t.Fatalf("oldest live record: %v", seqs(f.Records))
			}
			// A window across the archived and the live records: its
			// seqs are read from the live index on time (0031), the
			// archived ones gone from it with their records.
			for _, oldest := range []bool{false, true} {
				q := audit.Query{Since: findBase, Until: findBase.Add(35 * time.Second), OldestFirst: oldest, Limit: 50}
				s, args := store.FindWindowQuery(d.Name, q)
				got, err := db.FindRecords(ctx, s, args)
				want := []int64{34, 33, 32}
				if oldest {
					want = []int64{32, 33, 34}
				}
				if err != nil || !slices.Equal(seqs(got), want) {
					t.Fatalf("window across the archive, oldest first %v: %v %v, want %v", oldest, seqs(got), err, want)
				}
				if f := find(q); !slices.Equal(seqs(f.Records), want) || f.ArchivedBelow != 32 {
					t.Fatalf("Find across the archive, oldest first %v: %v, archived below %d", oldest, seqs(f.Records), f.ArchivedBelow)
				}
			}
		})
	}
}

// TestFindUsesIndexes checks the plans of the searches by object, actor
// and action: on SQLite each walks its index (object, seq), (actor, seq)
// or (action, seq) in seq order and sorts nothing, so that its cost is
// the limit, not the log (an action with an object or actor filters that
// index's records); PostgreSQL never reads the whole table for them.
func TestFindUsesIndexes(t *testing.T) {
	for _, d := range storetest.Dialects() {
		t.Run(d.Name, func(t *testing.T) {
			ctx := ctxT(t)
			db := storetest.Open(t, d.NewConfig(t))
			// A hot object and a hot actor, a tenth of the log each (a
			// seal credential, a busy officer): their records are many,
			// and the plan must still not read and sort them all.
			rows := make([][4]string, 5000)
			for i := range rows {
				rows[i] = [4]string{fmt.Sprintf("citizen:%d", i), "identity.login", fmt.Sprintf("cred-%d", i), "success"}
				switch i % 10 {
				case 0:
					rows[i][2] = "cred-hot"
				case 3:
					rows[i][0] = "ra:hot"
				}
				switch i % 1000 {
				case 5:
					rows[i][1] = "rare.one"
				case 6:
					rows[i][1] = "rare.two"
				}
			}
			findLog(t, db, rows)
			for _, c := range []struct {
				q     audit.Query
				index string
			}{
				{audit.Query{Object: "cred-hot", Limit: 51}, "audit_log_object"},
				{audit.Query{Object: "cred-hot", Limit: 51, OldestFirst: true, Since: findBase}, "audit_log_object"},
				{audit.Query{Actor: "ra:hot", Limit: 51}, "audit_log_actor"},
				{audit.Query{Actor: "ra:hot", Actions: []string{"identity.login"}, Limit: 51}, "audit_log_actor"},
				{audit.Query{Object: "cred-hot", Actions: []string{"identity.login", "rare.one"}, Limit: 51}, "audit_log_object"},
				{audit.Query{Actions: []string{"rare.one"}, Limit: 51}, "audit_log_action"},
				// The TSA's start reads the last timestamp.clock record so.
				{audit.Query{Actions: []string{"rare.one"}, Limit: 1}, "audit_log_action"},
				{audit.Query{Actions: []string{"rare.one"}, Since: findBase, Outcome: "success", Limit: 51, OldestFirst: true}, "audit_log_action"},
				{audit.Query{Actions: []string{"rare.two", "identity.login", "rare.one"}, Limit: 51}, "audit_log_action"},
				// A two-sided window as well: the index on time (0031)
				// is not taken for the object's or the action's.
				{audit.Query{Object: "cred-hot", Limit: 51, Since: findBase, Until: findBase.Add(time.Hour)}, "audit_log_object"},
				{audit.Query{Actions: []string{"rare.one"}, Limit: 51, Since: findBase, Until: findBase.Add(time.Hour)}, "audit_log_action"},
			} {
				s, args := store.FindQuery(d.Name, c.q)
				var lines []string
				var err error
				if d.Name == store.DriverPostgres {
					if err := db.ExecTx(ctx, "ANALYZE audit_log"); err != nil {
						t.Fatal(err)
					}
					lines, err = db.QueryLines(ctx, "EXPLAIN (COSTS OFF) "+s, args...)
				} else {
					lines, err = db.QueryLines(ctx, "EXPLAIN QUERY PLAN "+s, args...)
				}
				if err != nil {
					t.Fatal(err)
				}
				plan := strings.Join(lines, "\n")
				if d.Name == store.DriverPostgres {
					// PostgreSQL weighs the index against walking the
					// primary key for an object this frequent; either
					// stops at the limit. Reading the table is not.
					if strings.Contains(plan, "Seq Scan") || !strings.HasPrefix(strings.TrimSpace(lines[0]), "Limit") {
						t.Errorf("%+v: the plan reads the whole log:\n%s", c.q, plan)
					}
					continue
				}
				// Each search (one per action named, without an object or
				// actor) reads its index; none sorts what it read. The
				// merge of several actions' bounded answers may sort.
				searches := 0
				for _, l := range lines {
					switch {
					case strings.Contains(l, "USING INDEX "+c.index+" ("):
						searches++
					case strings.Contains(l, "audit_log"), strings.Contains(l, "TEMP B-TREE") && len(c.q.Actions) < 2:
						t.Errorf("%+v: the plan does not walk %s in order: %s", c.q, c.index, l)
					}
				}
				if want := max(1, len(c.q.Actions)); c.q.Object != "" || c.q.Actor != "" || want == 1 {
					if searches != 1 {
						t.Errorf("%+v: %d searches of %s, want 1:\n%s", c.q, searches, c.index, plan)
					}
				} else if searches != want {
					t.Errorf("%+v: %d searches of %s, want %d:\n%s", c.q, searches, c.index, want, plan)
				}
			}
		})
	}
}
