package audit_test

import (
	"context"
	"encoding/json"
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

// collective is the details of a collective record.
type collective struct {
	Count int               `json:"count"`
	Items []json.RawMessage `json:"items"`
}

// TestCollective appends items from many goroutines (with plain appends
// among them) on both databases: every item is in exactly one committed
// record of its group, the record returned to its caller, counts match, the
// chain verifies, and editing an item inside a record is detected.
func TestCollective(t *testing.T) {
	for _, d := range storetest.Dialects() {
		for _, limit := range []int{2000, 300} {
			t.Run(fmt.Sprintf("%s/maxDetails=%d", d.Name, limit), func(t *testing.T) { testCollective(t, d, limit) })
		}
	}
}

func testCollective(t *testing.T, d storetest.Dialect, limit int) {
	cfg := d.NewConfig(t)
	db := storetest.Open(t, cfg)
	reg := prometheus.NewRegistry()
	// Small details limits: a busy batch splits a group's items
	// over several records.
	l := audit.New(db, slog.New(slog.DiscardHandler), reg, audit.Options{MaxDetailsBytes: limit})
	t.Cleanup(l.Close)
	g1, err := l.Group("thiqa-tsa", "timestamp.issue", "unit-1", audit.OutcomeSuccess)
	if err != nil {
		t.Fatal(err)
	}
	g2, err := l.Group("thiqa-tsa", "timestamp.issue", "unit-2", audit.OutcomeSuccess)
	if err != nil {
		t.Fatal(err)
	}
	const workers, each = 16, 40
	var mu sync.Mutex
	got := map[string]int64{} // item -> seq of the record returned
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	for w := range workers {
		wg.Go(func() {
			for i := range each {
				g, object := g1, "unit-1"
				if w%2 == 1 {
					g, object = g2, "unit-2"
				}
				item := fmt.Sprintf(`{"serial":"%d-%d","requester":%s}`, w, i, audit.AppendJSONString(nil, "addr:\"x\"\n"))
				if i%10 == 0 {
					if _, err := l.Append(context.Background(), audit.Entry{Actor: "a", Action: "plain", Outcome: audit.OutcomeSuccess}); err != nil {
						errs <- err
						return
					}
				}
				r, err := g.Append(context.Background(), []byte(item))
				if err != nil {
					errs <- err
					return
				}
				if !strings.Contains(string(r.Details), item) || r.Object != object {
					errs <- fmt.Errorf("record %d returned for %s does not hold it: %s", r.Seq, item, r.Details)
					return
				}
				mu.Lock()
				got[item] = r.Seq
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if rep := verify(t, db); !rep.OK() {
		t.Fatalf("Verify: %s", rep)
	}
	seen := map[string]int64{}
	records, plain := 0, 0
	err = db.AuditRecords(ctxT(t), 1, func(r audit.Record) error {
		if r.Action == "plain" {
			plain++
			return nil
		}
		records++
		var c collective
		if err := json.Unmarshal(r.Details, &c); err != nil {
			return err
		}
		if c.Count != len(c.Items) || c.Count == 0 || len(r.Details) > limit {
			return fmt.Errorf("record %d: count %d, %d items, %d bytes", r.Seq, c.Count, len(c.Items), len(r.Details))
		}
		for _, it := range c.Items {
			var v struct{ Serial, Requester string }
			if err := json.Unmarshal(it, &v); err != nil || v.Requester != "addr:\"x\"\n" {
				return fmt.Errorf("item %s: %v", it, err)
			}
			if _, dup := seen[string(it)]; dup {
				return fmt.Errorf("item %s recorded twice", it)
			}
			seen[string(it)] = r.Seq
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(seen) != workers*each || plain != workers*each/10 {
		t.Fatalf("%d items and %d plain records stored, want %d and %d", len(seen), plain, workers*each, workers*each/10)
	}
	for item, seq := range got {
		if seen[item] != seq {
			t.Fatalf("item %s: Append returned record %d, stored in %d", item, seq, seen[item])
		}
	}
	if records >= workers*each {
		t.Errorf("%d collective records for %d items: nothing was gathered", records, workers*each)
	}
	if n := testutil.ToFloat64(mustCounterNamed(t, reg, "thiqa_audit_items_total")); n != workers*each {
		t.Errorf("thiqa_audit_items_total = %v", n)
	}
	t.Logf("%d items in %d collective records", len(seen), records)
	testTamper2(t, cfg, db)
}

// testTamper2 edits one item inside a collective record: Verify finds it.
func testTamper2(t *testing.T, cfg store.Config, db audit.Store) {
	t.Helper()
	var seq int64
	_ = db.AuditRecords(ctxT(t), 1, func(r audit.Record) error {
		if seq == 0 && r.Action == "timestamp.issue" {
			seq = r.Seq
		}
		return nil
	})
	tamper(t, cfg, fmt.Sprintf(`UPDATE audit_log SET details = REPLACE(details, '"serial":"', '"serial":"9') WHERE seq = %d`, seq))
	rep := verify(t, db)
	if rep.OK() || rep.Break.Seq != seq || rep.Break.Kind != audit.BreakHashMismatch {
		t.Fatalf("edited item in record %d: %s", seq, rep)
	}
}

func mustCounterNamed(t *testing.T, reg *prometheus.Registry, name string) prometheus.Collector {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == name {
			return prometheus.NewCounterFunc(prometheus.CounterOpts{Name: name, Help: "copy"}, func() float64 {
				return mf.GetMetric()[0].GetCounter().GetValue()
			})
		}
	}
	t.Fatalf("no metric %s", name)
	return nil
}

func TestCollectiveInvalid(t *testing.T) {
	db := storetest.Open(t, storetest.Dialects()[0].NewConfig(t))
	l := newLog(t, db, nil)
	if _, err := l.Group("", "timestamp.issue", "", audit.OutcomeSuccess); !errors.Is(err, audit.ErrInvalidEntry) {
		t.Errorf("group without actor: %v", err)
	}
	if _, err := l.Group("a", "b\x00", "", audit.OutcomeSuccess); !errors.Is(err, audit.ErrInvalidEntry) {
		t.Errorf("group with NUL: %v", err)
	}
	g, err := l.Group("a", "b", "o", audit.OutcomeSuccess)
	if err != nil {
		t.Fatal(err)
	}
	for name, item := range map[string]string{
		"empty":      "",
		"array":      `[1]`,
		"string":     `"x"`,
		"broken":     `{"a":}`,
		"two":        `{"a":1}{"b":2}`,
		"not UTF-8":  "{\"a\":\"\xff\"}",
		"raw NUL":    "{\"a\":\"\x00\"}",
		"huge":       `{"a":"` + strings.Repeat("x", 70000) + `"}`,
		"whitespace": ` {"a":1}`,
	} {
		if _, err := g.Append(context.Background(), []byte(item)); !errors.Is(err, audit.ErrInvalidEntry) {
			t.Errorf("%s item: %v, want ErrInvalidEntry", name, err)
		}
	}
	r, err := g.Append(context.Background(), []byte(`{"a":1}`))
	if err != nil || r.Seq != 1 || string(r.Details) != `{"count":1,"items":[{"a":1}]}` || r.Actor != "a" || r.Object != "o" {
		t.Fatalf("good item after bad ones: %+v, %v", r, err)
	}
	if rep := verify(t, db); !rep.OK() || rep.Verified != 1 {
		t.Fatalf("Verify: %s", rep)
	}
}

func TestAppendJSONString(t *testing.T) {
	for _, s := range []string{"", "plain", `q"uote\back`, "ctl\x00\x01\x1f\n\r\t", "عربي ✓", "bad\xffutf8\xc3", "\u2028"} {
		enc := audit.AppendJSONString(nil, s)
		var back string
		if err := json.Unmarshal(enc, &back); err != nil {
			t.Fatalf("%q encodes to invalid JSON %s: %v", s, enc, err)
		}
		want := strings.ToValidUTF8(s, "\ufffd")
		if strings.Contains(s, "\xc3") {
			want = "bad\ufffdutf8\ufffd"
		}
		if back != want {
			t.Errorf("%q -> %s -> %q, want %q", s, enc, back, want)
		}
	}
}

// countingStore counts transactions.
type countingStore struct {
	audit.Store
	n atomic.Int64
}

func (c *countingStore) AppendAuditRecords(ctx context.Context, seal func(audit.Head) ([]audit.Record, error)) error {
	c.n.Add(1)
	return c.Store.AppendAuditRecords(ctx, seal)
}

// TestCommitInterval: appends that arrive within CommitInterval of the
// last batch's start share the next transaction; without one, a batch is
// committed as soon as the writer is free.
func TestCommitInterval(t *testing.T) {
	for _, tc := range []struct {
		interval time.Duration
		maxTx    int64
	}{{200 * time.Millisecond, 3}, {0, 41}} {
		db := storetest.Open(t, storetest.Dialects()[0].NewConfig(t))
		st := &countingStore{Store: db}
		l := audit.New(st, nil, nil, audit.Options{CommitInterval: tc.interval})
		g, err := l.Group("a", "b", "", audit.OutcomeSuccess)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := g.Append(context.Background(), []byte(`{"first":true}`)); err != nil {
			t.Fatal(err)
		}
		start := time.Now()
		var wg sync.WaitGroup
		for i := range 40 {
			wg.Go(func() {
				if _, err := g.Append(context.Background(), fmt.Appendf(nil, `{"i":%d}`, i)); err != nil {
					t.Error(err)
				}
			})
		}
		wg.Wait()
		l.Close()
		took := time.Since(start)
		if n := st.n.Load(); n < 2 || n > tc.maxTx {
			t.Errorf("interval %v: %d transactions for 41 appends, want 2 to %d", tc.interval, n, tc.maxTx)
		}
		if tc.interval > 0 && took > 10*tc.interval {
			t.Errorf("interval %v: the appends took %v", tc.interval, took)
		}
		if rep := verify(t, db); !rep.OK() {
			t.Fatalf("Verify: %s", rep)
		}
	}
}
