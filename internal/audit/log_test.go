package audit_test

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/thiqa/thiqa/internal/audit"
	"github.com/thiqa/thiqa/store"
	"github.com/thiqa/thiqa/store/storetest"
)

func ctxT(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	t.Cleanup(cancel)
	return ctx
}

func newLog(t testing.TB, st audit.Store, reg prometheus.Registerer) *audit.Log {
	l := audit.New(st, slog.New(slog.DiscardHandler), reg, audit.Options{})
	t.Cleanup(l.Close)
	return l
}

// appendN appends n records from one goroutine.
func appendN(t testing.TB, l *audit.Log, n int, actor string) []audit.Record {
	t.Helper()
	out := make([]audit.Record, n)
	for i := range out {
		r, err := l.Append(context.Background(), audit.Entry{Actor: actor, Action: "test.append",
			Object: fmt.Sprintf("obj-%d", i), Outcome: audit.OutcomeSuccess, Details: map[string]any{"i": i, "b": "x", "a": true}})
		if err != nil {
			t.Fatalf("Append #%d: %v", i, err)
		}
		out[i] = r
	}
	return out
}

func verify(t testing.TB, st audit.Store) audit.Report {
	t.Helper()
	rep, err := audit.Verify(context.Background(), st)
	if err != nil {
		t.Fatalf("Verify: %v", err)
	}
	return rep
}

func wantBreak(t *testing.T, rep audit.Report, seq int64, kind audit.BreakKind) {
	t.Helper()
	if rep.OK() {
		t.Fatalf("Verify reported an intact chain (%s), want a %s at seq %d", rep, kind, seq)
	}
	if rep.Break.Seq != seq || rep.Break.Kind != kind {
		t.Fatalf("Verify: %s; want %s at seq %d", rep, kind, seq)
	}
	if rep.Verified != seq-1 {
		t.Fatalf("Verify counted %d valid records before the break at %d", rep.Verified, seq)
	}
}

// tamper runs SQL on the database behind the store's back, as a privileged
// attacker would: it first drops the append-only triggers.
func tamper(t *testing.T, cfg store.Config, stmts ...string) {
	t.Helper()
	driver, drop := "sqlite", []string{"DROP TRIGGER audit_log_no_update", "DROP TRIGGER audit_log_no_delete"}
	if cfg.Driver == store.DriverPostgres {
		driver, drop = "pgx", []string{"ALTER TABLE audit_log DISABLE TRIGGER USER"}
	}
	db, err := sql.Open(driver, cfg.DSN)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	for _, q := range append(drop, stmts...) {
		res, err := db.Exec(q)
		if err != nil {
			t.Fatalf("tampering: %s: %v", q, err)
		}
		if n, _ := res.RowsAffected(); n == 0 && !strings.HasPrefix(q, "DROP") && !strings.HasPrefix(q, "ALTER") {
			t.Fatalf("tampering: %s changed nothing", q)
		}
	}
}

func TestLog(t *testing.T) {
	for _, d := range storetest.Dialects() {
		t.Run(d.Name, func(t *testing.T) {
			t.Run("AppendVerify", func(t *testing.T) { testAppendVerify(t, d) })
			t.Run("EditDetailsDetected", func(t *testing.T) {
				testTamper(t, d, 20, 7, audit.BreakHashMismatch, `UPDATE audit_log SET details = '{"i":999}' WHERE seq = 7`)
			})
			t.Run("EditActorDetected", func(t *testing.T) {
				testTamper(t, d, 20, 13, audit.BreakHashMismatch, `UPDATE audit_log SET actor = 'mallory' WHERE seq = 13`)
			})
			t.Run("DeleteMiddleDetected", func(t *testing.T) {
				testTamper(t, d, 20, 10, audit.BreakSeqGap, `DELETE FROM audit_log WHERE seq = 10`)
			})
			t.Run("DeleteAndRenumberDetected", func(t *testing.T) {
				testTamper(t, d, 20, 10, audit.BreakPrevHashMismatch,
					`DELETE FROM audit_log WHERE seq = 10`, `UPDATE audit_log SET seq = seq - 1 WHERE seq = 11`)
			})
			t.Run("DeleteFirstDetected", func(t *testing.T) {
				testTamper(t, d, 5, 1, audit.BreakSeqGap, `DELETE FROM audit_log WHERE seq = 1`)
			})
			t.Run("DeleteTailDetected", func(t *testing.T) {
				testTamper(t, d, 20, 18, audit.BreakHeadMismatch, `DELETE FROM audit_log WHERE seq >= 18`)
			})
			t.Run("DeleteAllDetected", func(t *testing.T) {
				testTamper(t, d, 3, 1, audit.BreakHeadMismatch, `DELETE FROM audit_log`)
			})
			t.Run("ReplaceTailDetected", func(t *testing.T) { testReplaceTail(t, d) })
			t.Run("RecordBeyondHeadDetected", func(t *testing.T) { testBeyondHead(t, d) })
			t.Run("Concurrent", func(t *testing.T) { testConcurrent(t, d) })
			t.Run("TwoStores", func(t *testing.T) { testTwoStores(t, d) })
			t.Run("TwoProcesses", func(t *testing.T) { testTwoProcesses(t, d) })
			t.Run("FailedBatch", func(t *testing.T) { testFailedBatch(t, d) })
			t.Run("CloseDrains", func(t *testing.T) { testCloseDrains(t, d) })
			t.Run("Cancelled", func(t *testing.T) { testCancelled(t, d) })
		})
	}
}

func testAppendVerify(t *testing.T, d storetest.Dialect) {
	db := storetest.Open(t, d.NewConfig(t))
	if rep := verify(t, db); !rep.OK() || rep.Verified != 0 {
		t.Fatalf("empty log: %s", rep)
	}
	reg := prometheus.NewRegistry()
	l := newLog(t, db, reg)
	ctx := ctxT(t)
	r, err := l.Append(ctx, audit.Entry{Actor: "system", Action: "serve.start", Outcome: audit.OutcomeSuccess,
		Details: map[string]any{"z": 1, "a": "عربي", "m": map[string]int{"y": 2, "b": 1}}})
	if err != nil {
		t.Fatal(err)
	}
	if r.Seq != 1 || !bytes.Equal(r.PrevHash, audit.GenesisHash()) || !bytes.Equal(r.Hash, audit.HashRecord(r)) {
		t.Fatalf("first record: %+v", r)
	}
	if want := `{"a":"عربي","m":{"b":1,"y":2},"z":1}`; string(r.Details) != want {
		t.Fatalf("details = %s, want %s (sorted keys)", r.Details, want)
	}
	if _, err := l.Append(ctx, audit.Entry{Actor: "a", Action: "b", Outcome: audit.OutcomeRefused}); err != nil {
		t.Fatal(err)
	}
	recs := appendN(t, l, 48, "tester")
	rep := verify(t, db)
	if !rep.OK() || rep.Verified != 50 || rep.LastSeq != 50 {
		t.Fatalf("Verify: %s", rep)
	}
	// What Append returned is exactly what is stored.
	var stored []audit.Record
	if err := db.AuditRecords(ctx, 3, func(r audit.Record) error { stored = append(stored, r); return nil }); err != nil {
		t.Fatal(err)
	}
	for i, s := range stored {
		w := recs[i]
		if s.Seq != w.Seq || !s.Time.Equal(w.Time) || s.Actor != w.Actor || s.Object != w.Object ||
			!bytes.Equal(s.Details, w.Details) || !bytes.Equal(s.Hash, w.Hash) || !bytes.Equal(s.PrevHash, w.PrevHash) {
			t.Fatalf("stored %+v, Append returned %+v", s, w)
		}
	}
	if got := testutil.ToFloat64(mustCounter(t, reg, "success")); got != 49 {
		t.Errorf("thiqa_audit_records_total{outcome=success} = %v, want 49", got)
	}
	if n := testutil.CollectAndCount(reg, "thiqa_audit_batch_size", "thiqa_audit_append_duration_seconds"); n != 2 {
		t.Errorf("histograms registered: %d, want 2", n)
	}
}

func mustCounter(t *testing.T, reg *prometheus.Registry, outcome string) prometheus.Collector {
	t.Helper()
	// A second Log on the same registry shares the collectors.
	c := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "thiqa_audit_records_total", Help: "Audit records committed, by outcome."}, []string{"outcome"})
	if err := reg.Register(c); err != nil {
		var are prometheus.AlreadyRegisteredError
		if errors.As(err, &are) {
			return are.ExistingCollector.(*prometheus.CounterVec).WithLabelValues(outcome)
		}
		t.Fatal(err)
	}
	t.Fatal("thiqa_audit_records_total was not registered")
	return nil
}

func testTamper(t *testing.T, d storetest.Dialect, n int, seq int64, kind audit.BreakKind, stmts ...string) {
	cfg := d.NewConfig(t)
	db := storetest.Open(t, cfg)
	l := newLog(t, db, nil)
	appendN(t, l, n, "tester")
	if rep := verify(t, db); !rep.OK() {
		t.Fatalf("before tampering: %s", rep)
	}
	tamper(t, cfg, stmts...)
	wantBreak(t, verify(t, db), seq, kind)
}

// testReplaceTail rewrites the last record with a correctly recomputed hash
// (the attacker knows the algorithm) but cannot fix the head.
func testReplaceTail(t *testing.T, d storetest.Dialect) {
	cfg := d.NewConfig(t)
	db := storetest.Open(t, cfg)
	l := newLog(t, db, nil)
	recs := appendN(t, l, 5, "tester")
	forged := recs[4]
	forged.Actor = "mallory"
	forged.Hash = audit.HashRecord(forged)
	tamper(t, cfg, fmt.Sprintf("UPDATE audit_log SET actor = 'mallory', hash = %s WHERE seq = 5", blobLiteral(d.Name, forged.Hash)))
	wantBreak(t, verify(t, db), 5, audit.BreakHeadMismatch)
}

// testBeyondHead inserts a well-formed record after the head without
// moving it.
func testBeyondHead(t *testing.T, d storetest.Dialect) {
	cfg := d.NewConfig(t)
	db := storetest.Open(t, cfg)
	l := newLog(t, db, nil)
	recs := appendN(t, l, 3, "tester")
	extra := audit.Record{Seq: 4, Time: time.Unix(0, 1).UTC(), Actor: "mallory", Action: "x", Outcome: "success",
		Details: []byte("{}"), PrevHash: recs[2].Hash}
	extra.Hash = audit.HashRecord(extra)
	tamper(t, cfg, fmt.Sprintf(`INSERT INTO audit_log (seq, at_unix_ns, actor, action, object, outcome, details, prev_hash, hash)
VALUES (4, 1, 'mallory', 'x', '', 'success', '{}', %s, %s)`, blobLiteral(d.Name, extra.PrevHash), blobLiteral(d.Name, extra.Hash)))
	wantBreak(t, verify(t, db), 4, audit.BreakHeadMismatch)
}

func blobLiteral(dialect string, b []byte) string {
	if dialect == store.DriverPostgres {
		return fmt.Sprintf(`'\x%x'::bytea`, b)
	}
	return fmt.Sprintf("X'%x'", b)
}

func testConcurrent(t *testing.T, d storetest.Dialect) {
	db := storetest.Open(t, d.NewConfig(t))
	l := newLog(t, db, nil)
	const writers, each = 8, 500
	seqs := make([][]audit.Record, writers)
	var wg sync.WaitGroup
	for w := range writers {
		wg.Go(func() { seqs[w] = appendN(t, l, each, fmt.Sprintf("writer-%d", w)) })
	}
	wg.Wait()
	seen := make(map[int64]bool)
	for _, rs := range seqs {
		for i, r := range rs {
			if seen[r.Seq] {
				t.Fatalf("seq %d returned twice", r.Seq)
			}
			seen[r.Seq] = true
			if i > 0 && r.Seq <= rs[i-1].Seq {
				t.Fatalf("one writer's records out of order: %d after %d", r.Seq, rs[i-1].Seq)
			}
		}
	}
	rep := verify(t, db)
	if !rep.OK() || rep.Verified != writers*each || rep.Head.Seq != writers*each {
		t.Fatalf("Verify: %s", rep)
	}
}

func testTwoStores(t *testing.T, d storetest.Dialect) {
	cfg := d.NewConfig(t)
	dbs := []*store.DB{storetest.Open(t, cfg), storetest.Open(t, cfg)}
	var wg sync.WaitGroup
	for i, db := range dbs {
		l := newLog(t, db, nil)
		for w := range 4 {
			wg.Go(func() { appendN(t, l, 250, fmt.Sprintf("store-%d-%d", i, w)) })
		}
	}
	wg.Wait()
	rep := verify(t, dbs[1])
	if !rep.OK() || rep.Verified != 2000 {
		t.Fatalf("Verify: %s", rep)
	}
}

// failingStore makes every batch that holds an entry with Action "poison"
// fail inside the transaction, after the real seal ran.
type failingStore struct{ audit.Store }

var errPoison = errors.New("poisoned batch")

func (f failingStore) AppendAuditRecords(ctx context.Context, seal func(audit.Head) ([]audit.Record, error)) error {
	return f.Store.AppendAuditRecords(ctx, func(h audit.Head) ([]audit.Record, error) {
		recs, err := seal(h)
		for _, r := range recs {
			if r.Action == "poison" {
				return nil, errPoison
			}
		}
		return recs, err
	})
}

func testFailedBatch(t *testing.T, d storetest.Dialect) {
	db := storetest.Open(t, d.NewConfig(t))
	l := newLog(t, failingStore{db}, nil)
	appendN(t, l, 5, "tester")
	before, err := db.AuditHead(ctx(t))
	if err != nil {
		t.Fatal(err)
	}
	_, err = l.Append(ctx(t), audit.Entry{Actor: "tester", Action: "poison", Outcome: audit.OutcomeFailure})
	if !errors.Is(err, errPoison) {
		t.Fatalf("Append in a failing batch: %v", err)
	}
	after, err := db.AuditHead(ctx(t))
	if err != nil || after.Seq != before.Seq || !bytes.Equal(after.Hash, before.Hash) {
		t.Fatalf("head moved by a failed batch: %+v → %+v (%v)", before, after, err)
	}
	// The log goes on, and the chain holds no trace of the failed batch.
	r := appendN(t, l, 3, "tester")
	if r[0].Seq != before.Seq+1 {
		t.Fatalf("next record has seq %d, want %d", r[0].Seq, before.Seq+1)
	}
	if rep := verify(t, db); !rep.OK() || rep.Verified != 8 {
		t.Fatalf("Verify: %s", rep)
	}
}

func ctx(t *testing.T) context.Context { return ctxT(t) }

func testCloseDrains(t *testing.T, d storetest.Dialect) {
	db := storetest.Open(t, d.NewConfig(t))
	l := audit.New(db, nil, nil, audit.Options{MaxBatch: 16})
	var ok, closed int64
	var mu sync.Mutex
	var wg sync.WaitGroup
	for w := range 16 {
		wg.Go(func() {
			for i := range 50 {
				_, err := l.Append(context.Background(), audit.Entry{Actor: fmt.Sprint(w), Action: "a", Object: fmt.Sprint(i), Outcome: "success"})
				mu.Lock()
				switch {
				case err == nil:
					ok++
				case errors.Is(err, audit.ErrClosed):
					closed++
				default:
					t.Errorf("Append: %v", err)
				}
				mu.Unlock()
			}
		})
	}
	time.Sleep(20 * time.Millisecond)
	l.Close()
	wg.Wait()
	rep := verify(t, db)
	if !rep.OK() || rep.Verified != ok || ok+closed != 800 {
		t.Fatalf("after Close: %s; %d appended, %d refused", rep, ok, closed)
	}
	if _, err := l.Append(context.Background(), audit.Entry{Actor: "a", Action: "b", Outcome: "success"}); !errors.Is(err, audit.ErrClosed) {
		t.Fatalf("Append after Close: %v", err)
	}
	l.Close() // twice is fine
}

func testCancelled(t *testing.T, d storetest.Dialect) {
	db := storetest.Open(t, d.NewConfig(t))
	l := newLog(t, db, nil)
	// A caller whose context is cancelled (a client that went away) still
	// gets its record: what was done for it is recorded.
	c, cancel := context.WithCancel(context.Background())
	cancel()
	r, err := l.Append(c, audit.Entry{Actor: "a", Action: "b", Outcome: "success"})
	if err != nil || r.Seq != 1 {
		t.Fatalf("Append with a cancelled context: %+v, %v; want the record written", r, err)
	}
	var wg sync.WaitGroup
	for i := range 200 {
		wg.Go(func() {
			c, cancel := context.WithTimeout(context.Background(), time.Duration(i%7)*50*time.Microsecond)
			defer cancel()
			if _, err := l.Append(c, audit.Entry{Actor: "a", Action: "b", Outcome: "success"}); err != nil {
				t.Errorf("Append #%d with an ending context: %v", i, err)
			}
		})
	}
	wg.Wait()
	appendN(t, l, 1, "after")
	if rep := verify(t, db); !rep.OK() || rep.Verified != 202 {
		t.Fatalf("Verify: %s, want 202 records", rep)
	}

	// The Log's own bound: appends that cannot be committed within
	// AppendTimeout give up, and the chain stays valid whatever happened
	// to their records.
	short := audit.New(db, slog.New(slog.DiscardHandler), nil, audit.Options{AppendTimeout: 50 * time.Microsecond})
	defer short.Close()
	var gaveUp atomic.Int64
	for range 200 {
		wg.Go(func() {
			if _, err := short.Append(context.Background(), audit.Entry{Actor: "a", Action: "b", Outcome: "success"}); errors.Is(err, context.DeadlineExceeded) {
				gaveUp.Add(1)
			} else if err != nil {
				t.Errorf("Append: %v", err)
			}
		})
	}
	wg.Wait()
	t.Logf("%d of 200 appends gave up after 50µs", gaveUp.Load())
	appendN(t, l, 1, "after")
	if rep := verify(t, db); !rep.OK() {
		t.Fatalf("Verify: %s", rep)
	}
}

func TestInvalidEntries(t *testing.T) {
	db := storetest.Open(t, storetest.Dialects()[0].NewConfig(t))
	l := newLog(t, db, nil)
	good := audit.Entry{Actor: "a", Action: "b", Outcome: "success"}
	bad := map[string]audit.Entry{
		"no actor":      {Action: "b", Outcome: "success"},
		"no action":     {Actor: "a", Outcome: "success"},
		"no outcome":    {Actor: "a", Action: "b"},
		"NUL":           {Actor: "a\x00", Action: "b", Outcome: "success"},
		"not UTF-8":     {Actor: "a", Action: "b\xff", Outcome: "success"},
		"long object":   {Actor: "a", Action: "b", Object: strings.Repeat("o", 2000), Outcome: "success"},
		"huge details":  {Actor: "a", Action: "b", Outcome: "success", Details: strings.Repeat("d", 70000)},
		"unmarshalable": {Actor: "a", Action: "b", Outcome: "success", Details: make(chan int)},
	}
	for name, e := range bad {
		if _, err := l.Append(context.Background(), e); !errors.Is(err, audit.ErrInvalidEntry) {
			t.Errorf("%s: %v, want ErrInvalidEntry", name, err)
		}
	}
	r, err := l.Append(context.Background(), good)
	if err != nil || r.Seq != 1 || string(r.Details) != "{}" {
		t.Fatalf("good entry after bad ones: %+v, %v", r, err)
	}
}
