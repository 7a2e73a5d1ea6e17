package store_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/thiqa/thiqa/internal/audit"
	"github.com/thiqa/thiqa/store"
	"github.com/thiqa/thiqa/store/storetest"
)

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	return ctx
}

func TestConfigValidate(t *testing.T) {
	good := []store.Config{
		{Driver: "sqlite", DSN: "/var/lib/thiqa/thiqa.db"},
		{DSN: "thiqa.db", Synchronous: "full"},
		{Driver: "postgres", DSN: "postgres://thiqa@db.example:5432/thiqa?sslmode=verify-full"},
		{Driver: "postgres", DSN: "host=db.example user=thiqa dbname=thiqa", MaxOpenConns: 32},
		store.SQLiteConfig("/data"),
	}
	for _, c := range good {
		if err := c.Validate(); err != nil {
			t.Errorf("Validate(%+v) = %v, want nil", c, err)
		}
	}
	bad := map[string]store.Config{
		"driver":       {Driver: "mysql", DSN: "x"},
		"empty sqlite": {Driver: "sqlite"},
		"memory":       {Driver: "sqlite", DSN: ":memory:"},
		"uri":          {Driver: "sqlite", DSN: "file:x.db?mode=ro"},
		"synchronous":  {Driver: "sqlite", DSN: "x.db", Synchronous: "OFF"},
		"empty pg":     {Driver: "postgres"},
		"bad pg url":   {Driver: "postgres", DSN: "postgres://u:secret@[::1:5432/db"},
		"negative":     {Driver: "sqlite", DSN: "x.db", MaxOpenConns: -1},
	}
	for name, c := range bad {
		err := c.Validate()
		if err == nil {
			t.Errorf("%s: Validate(%+v) = nil, want an error", name, c)
			continue
		}
		if strings.Contains(err.Error(), "secret") {
			t.Errorf("%s: error reveals the password: %v", name, err)
		}
	}
	if got := store.SQLiteConfig("/data").DSN; got != filepath.Join("/data", "thiqa.db") {
		t.Errorf("SQLiteConfig DSN = %q", got)
	}
}

func TestMigrationFoldersMatch(t *testing.T) {
	s, err := store.MigrationVersions(store.DriverSQLite)
	if err != nil {
		t.Fatal(err)
	}
	p, err := store.MigrationVersions(store.DriverPostgres)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(s, p) || len(s) == 0 || s[0] != "0001_audit" {
		t.Fatalf("migrations: sqlite %v, postgres %v", s, p)
	}
}

func TestOpenFailsClearly(t *testing.T) {
	ctx := ctxT(t)
	_, err := store.Open(ctx, store.Config{Driver: "sqlite", DSN: filepath.Join(t.TempDir(), "missing", "thiqa.db")}, nil)
	if err == nil || !strings.Contains(err.Error(), "missing") {
		t.Errorf("Open in a missing folder: %v", err)
	}
	cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	_, err = store.Open(cctx, store.Config{Driver: "postgres", DSN: "postgres://nobody@127.0.0.1:1/none?sslmode=disable&connect_timeout=2"}, nil)
	if err == nil || !strings.Contains(err.Error(), "postgres") {
		t.Errorf("Open on a closed port: %v", err)
	}
}

// TestRebind checks placeholder rewriting in both dialects.
func TestRebind(t *testing.T) {
	for _, d := range storetest.Dialects() {
		t.Run(d.Name, func(t *testing.T) {
			db := storetest.Open(t, d.NewConfig(t))
			q := "SELECT a FROM t WHERE b = ? AND c = '?' AND d IN (?, ?)"
			want := q
			if d.Name == store.DriverPostgres {
				want = "SELECT a FROM t WHERE b = $1 AND c = '?' AND d IN ($2, $3)"
			}
			if got := db.Rebind(q); got != want {
				t.Errorf("rebind = %q, want %q", got, want)
			}
		})
	}
}

func TestStore(t *testing.T) {
	for _, d := range storetest.Dialects() {
		t.Run(d.Name, func(t *testing.T) {
			t.Run("OpenMigratesOnce", func(t *testing.T) { testOpenMigratesOnce(t, d) })
			t.Run("ConcurrentOpen", func(t *testing.T) { testConcurrentOpen(t, d) })
			t.Run("ChangedMigrationRefused", func(t *testing.T) { testChangedMigration(t, d) })
			t.Run("Errors", func(t *testing.T) { testErrors(t, d) })
			t.Run("TxRollback", func(t *testing.T) { testTxRollback(t, d) })
			t.Run("AuditAppendOnly", func(t *testing.T) { testAuditAppendOnly(t, d) })
			t.Run("AuditAppend", func(t *testing.T) { testAuditAppend(t, d) })
			t.Run("AuditTwoDBsAlternate", func(t *testing.T) { testAuditAlternate(t, d) })
		})
	}
}

func testOpenMigratesOnce(t *testing.T, d storetest.Dialect) {
	ctx := ctxT(t)
	cfg := d.NewConfig(t)
	db := storetest.Open(t, cfg)
	if db.Dialect() != d.Name {
		t.Errorf("Dialect() = %q, want %q", db.Dialect(), d.Name)
	}
	if err := db.Ping(ctx); err != nil {
		t.Fatalf("Ping: %v", err)
	}
	reg := prometheus.NewRegistry()
	if err := db.RegisterMetrics(reg); err != nil {
		t.Fatal(err)
	}
	if n, err := testutil.GatherAndCount(reg, "go_sql_open_connections"); err != nil || n == 0 {
		t.Errorf("go_sql_open_connections series: %d, %v", n, err)
	}
	db2 := storetest.Open(t, cfg) // second open: nothing left to apply
	want, _ := store.MigrationVersions(d.Name)
	n, err := db2.QueryInt64(ctx, "SELECT COUNT(*) FROM schema_migrations")
	if err != nil || n != int64(len(want)) {
		t.Fatalf("schema_migrations rows = %d, %v; want %d", n, err, len(want))
	}
	h, err := db2.AuditHead(ctx)
	if err != nil || h.Seq != 0 || !bytes.Equal(h.Hash, audit.GenesisHash()) {
		t.Fatalf("fresh head = %+v, %v; want seq 0 and the genesis hash", h, err)
	}
}

func testConcurrentOpen(t *testing.T, d storetest.Dialect) {
	ctx := ctxT(t)
	cfg := d.NewConfig(t)
	const n = 6
	var wg sync.WaitGroup
	errs := make([]error, n)
	dbs := make([]*store.DB, n)
	for i := range n {
		wg.Go(func() {
			dbs[i], errs[i] = store.Open(ctx, cfg, slog.New(slog.DiscardHandler))
		})
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("Open #%d: %v", i, err)
			continue
		}
		defer dbs[i].Close()
	}
	if t.Failed() {
		return
	}
	want, _ := store.MigrationVersions(d.Name)
	got, err := dbs[0].QueryInt64(ctx, "SELECT COUNT(*) FROM schema_migrations")
	if err != nil || got != int64(len(want)) {
		t.Fatalf("schema_migrations rows = %d, %v; want %d", got, err, len(want))
	}
	heads, err := dbs[0].QueryInt64(ctx, "SELECT COUNT(*) FROM audit_head")
	if err != nil || heads != 1 {
		t.Fatalf("audit_head rows = %d, %v; want 1", heads, err)
	}
}

func testChangedMigration(t *testing.T, d storetest.Dialect) {
	ctx := ctxT(t)
	cfg := d.NewConfig(t)
	db := storetest.Open(t, cfg)
	if err := db.ExecTx(ctx, "UPDATE schema_migrations SET checksum = ? WHERE version = ?", "0000", "0001_audit"); err != nil {
		t.Fatal(err)
	}
	_, err := store.Open(ctx, cfg, nil)
	if err == nil || !strings.Contains(err.Error(), "0001_audit") || !strings.Contains(err.Error(), "changed") {
		t.Fatalf("Open after a migration changed: %v; want a refusal naming 0001_audit", err)
	}
}

func testErrors(t *testing.T, d storetest.Dialect) {
	ctx := ctxT(t)
	db := storetest.Open(t, d.NewConfig(t))
	ins := "INSERT INTO audit_log (seq, at_unix_ns, actor, action, object, outcome, details, prev_hash, hash) VALUES (?, 0, 'a', 'b', 'c', 'd', '{}', ?, ?)"
	z := make([]byte, 32)
	if err := db.ExecTx(ctx, ins, 7, z, z); err != nil {
		t.Fatal(err)
	}
	err := db.ExecTx(ctx, ins, 7, z, z)
	if !errors.Is(err, store.ErrConflict) {
		t.Fatalf("duplicate primary key: %v; want ErrConflict", err)
	}
	_, err = db.QueryInt64(ctx, "SELECT seq FROM audit_log WHERE seq = ?", 8)
	if !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("missing row: %v; want ErrNotFound", err)
	}
	if errors.Is(err, store.ErrConflict) {
		t.Fatal("ErrNotFound also matched ErrConflict")
	}
}

func testTxRollback(t *testing.T, d storetest.Dialect) {
	ctx := ctxT(t)
	db := storetest.Open(t, d.NewConfig(t))
	boom := errors.New("boom")
	err := db.WriteTx(ctx, func(exec func(string, ...any) error) error {
		if err := exec("UPDATE audit_head SET seq = ? WHERE id = 1", 42); err != nil {
			return err
		}
		return boom
	})
	if !errors.Is(err, boom) {
		t.Fatalf("WriteTx = %v, want boom", err)
	}
	if h, err := db.AuditHead(ctx); err != nil || h.Seq != 0 {
		t.Fatalf("head after a failed transaction = %+v, %v; want seq 0", h, err)
	}
}

func testAuditAppendOnly(t *testing.T, d storetest.Dialect) {
	ctx := ctxT(t)
	db := storetest.Open(t, d.NewConfig(t))
	appendN(t, db, 3)
	for _, q := range []string{
		"UPDATE audit_log SET actor = 'mallory' WHERE seq = 2",
		"DELETE FROM audit_log WHERE seq = 3",
		"DELETE FROM audit_head",
	} {
		err := db.ExecTx(ctx, q)
		if err == nil || !strings.Contains(err.Error(), "audit_") {
			t.Errorf("%s: %v; want the append-only refusal", q, err)
		}
	}
	if n, err := db.QueryInt64(ctx, "SELECT COUNT(*) FROM audit_log WHERE actor <> 'mallory'"); err != nil || n != 3 {
		t.Errorf("records after refused changes: %d, %v", n, err)
	}
}

// appendN appends n chained records in one transaction.
func appendN(t *testing.T, db *store.DB, n int) []audit.Record {
	t.Helper()
	var out []audit.Record
	err := db.AppendAuditRecords(context.Background(), func(h audit.Head) ([]audit.Record, error) {
		out = chain(h, n)
		return out, nil
	})
	if err != nil {
		t.Fatalf("AppendAuditRecords: %v", err)
	}
	return out
}

func chain(h audit.Head, n int) []audit.Record {
	out := make([]audit.Record, n)
	prev := h.Hash
	now := time.Unix(0, time.Now().UnixNano()).UTC()
	for i := range out {
		r := audit.Record{Seq: h.Seq + int64(i) + 1, Time: now, Actor: "tester", Action: "test.append",
			Object: fmt.Sprintf("obj-%d", i), Outcome: audit.OutcomeSuccess, Details: []byte(`{"i":1}`), PrevHash: prev}
		r.Hash = audit.HashRecord(r)
		out[i], prev = r, r.Hash
	}
	return out
}

func testAuditAppend(t *testing.T, d storetest.Dialect) {
	ctx := ctxT(t)
	db := storetest.Open(t, d.NewConfig(t))

	// A failing seal, or records that do not continue the chain, change nothing.
	boom := errors.New("boom")
	if err := db.AppendAuditRecords(ctx, func(audit.Head) ([]audit.Record, error) { return nil, boom }); !errors.Is(err, boom) {
		t.Fatalf("failing seal: %v", err)
	}
	err := db.AppendAuditRecords(ctx, func(h audit.Head) ([]audit.Record, error) {
		rs := chain(h, 3)
		rs[2].Seq = 9
		return rs, nil
	})
	if err == nil {
		t.Fatal("a record that skips a seq was accepted")
	}
	err = db.AppendAuditRecords(ctx, func(h audit.Head) ([]audit.Record, error) {
		return chain(audit.Head{Seq: h.Seq, Hash: make([]byte, 32)}, 1), nil
	})
	if err != nil {
		t.Fatalf("first record: %v", err)
	}
	err = db.AppendAuditRecords(ctx, func(h audit.Head) ([]audit.Record, error) {
		return chain(audit.Head{Seq: h.Seq, Hash: bytes.Repeat([]byte{1}, 32)}, 1), nil
	})
	if err == nil {
		t.Fatal("a record with the wrong prev hash was accepted")
	}
	if h, _ := db.AuditHead(ctx); h.Seq != 1 {
		t.Fatalf("head after refused appends = %d, want 1", h.Seq)
	}

	// 2,500 records in batches (crossing insert chunks and read pages).
	var want []audit.Record
	for range 5 {
		want = append(want, appendN(t, db, 500)...)
	}
	h, err := db.AuditHead(ctx)
	if err != nil || h.Seq != 2501 || !bytes.Equal(h.Hash, want[len(want)-1].Hash) {
		t.Fatalf("head = %+v, %v; want seq 2501 with the last hash", h, err)
	}
	var got []audit.Record
	err = db.AuditRecords(ctx, 2, func(r audit.Record) error { got = append(got, r); return nil })
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != len(want) {
		t.Fatalf("AuditRecords from 2: %d records, want %d", len(got), len(want))
	}
	for i := range got {
		g, w := got[i], want[i]
		if g.Seq != w.Seq || !g.Time.Equal(w.Time) || g.Object != w.Object || !bytes.Equal(g.Details, w.Details) ||
			!bytes.Equal(g.Hash, w.Hash) || !bytes.Equal(audit.HashRecord(g), g.Hash) {
			t.Fatalf("record %d read back as %+v, written %+v", w.Seq, g, w)
		}
	}
	// fn's error stops the walk.
	stop := errors.New("stop")
	calls := 0
	err = db.AuditRecords(ctx, 1, func(audit.Record) error { calls++; return stop })
	if !errors.Is(err, stop) || calls != 1 {
		t.Fatalf("AuditRecords with a failing fn: %v after %d calls", err, calls)
	}
}

// testAuditAlternate appends through two DBs on one database in turn, so
// each one's idea of the head is stale at every append (on PostgreSQL the
// one-statement path must notice and fall back to the locked path).
func testAuditAlternate(t *testing.T, d storetest.Dialect) {
	ctx := ctxT(t)
	cfg := d.NewConfig(t)
	a, b := storetest.Open(t, cfg), storetest.Open(t, cfg)
	for i := range 10 {
		db := a
		if i%2 == 1 {
			db = b
		}
		appendN(t, db, i+1)
	}
	h, err := a.AuditHead(ctx)
	if err != nil || h.Seq != 55 {
		t.Fatalf("head = %+v, %v; want seq 55", h, err)
	}
	rep, err := audit.Verify(ctx, b)
	if err != nil || !rep.OK() || rep.Verified != 55 {
		t.Fatalf("Verify: %v, %v", rep, err)
	}
}

func TestSQLiteSettings(t *testing.T) {
	ctx := ctxT(t)
	for sync, want := range map[string]string{"": "1", "FULL": "2"} {
		cfg := store.Config{Driver: store.DriverSQLite, DSN: filepath.Join(t.TempDir(), "thiqa.db"), Synchronous: sync}
		db := storetest.Open(t, cfg)
		for pragma, w := range map[string]string{"journal_mode": "wal", "synchronous": want, "foreign_keys": "1", "busy_timeout": "10000"} {
			got, err := db.WriterPragma(ctx, pragma)
			if err != nil || got != w {
				t.Errorf("synchronous=%q: PRAGMA %s = %q, %v; want %q", sync, pragma, got, err, w)
			}
		}
		if err := db.ExecOnReader(ctx, "UPDATE audit_head SET seq = 5"); err == nil {
			t.Error("the read pool accepted a write")
		}
	}
}
