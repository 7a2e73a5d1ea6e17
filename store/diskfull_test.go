package store_test

import (
	"bytes"
	"errors"
	"io"
	"log/slog"
	"path/filepath"
	"strings"
	"testing"

	"github.com/thiqa/thiqa/internal/audit"
	"github.com/thiqa/thiqa/internal/outage"
	"github.com/thiqa/thiqa/internal/testenv"
	"github.com/thiqa/thiqa/store"
	"github.com/thiqa/thiqa/store/storetest"
)

// TestSQLiteDiskFull fills the file system under a SQLite store: a write
// that fails for want of space is an outage (the services answer "try
// again later", as when PostgreSQL is down), Ping fails (/readyz), the
// log says so once and not once per write, nothing half-written is left
// in the audit chain, and once space is freed writes succeed again and
// Ping passes, without reopening the store.
func TestSQLiteDiskFull(t *testing.T) {
	ctx := ctxT(t)
	disk := testenv.NewSmallDisk(t, 4<<20)
	var logs testenv.SyncBuffer
	db, err := store.Open(ctx, store.Config{Driver: store.DriverSQLite, DSN: filepath.Join(disk.Dir, store.DefaultSQLiteFile)},
		slog.New(slog.NewJSONHandler(&logs, nil)))
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { _ = db.Close() })
	appendN(t, db, 3)
	before, err := db.AuditHead(ctx)
	if err != nil {
		t.Fatal(err)
	}

	disk.Fill(t)
	// The WAL's pages already on disk absorb a few writes; big records
	// outgrow them.
	details := []byte(`{"pad":"` + strings.Repeat("x", 16<<10) + `"}`)
	var failed []error
	for i := 0; i < 200 && len(failed) < 5; i++ {
		err := db.AppendAuditRecords(ctx, func(h audit.Head) ([]audit.Record, error) {
			recs := chain(h, 8)
			prev := h.Hash
			for j := range recs {
				recs[j].Details, recs[j].PrevHash = details, prev
				recs[j].Hash = audit.HashRecord(recs[j])
				prev = recs[j].Hash
			}
			return recs, nil
		})
		if err != nil {
			failed = append(failed, err)
		}
	}
	if len(failed) == 0 {
		t.Fatal("200 appends of 128 KiB succeeded on a full disk")
	}
	for _, err := range failed {
		if !outage.Is(err) {
			t.Fatalf("a write failing on a full disk is not an outage (it would answer 500, not 503): %v", err)
		}
	}
	if err := db.Ping(ctx); err == nil {
		t.Error("Ping passes while no write succeeds: /readyz would keep sending requests")
	} else if !errors.Is(err, store.ErrStorageFault) {
		t.Errorf("Ping's error does not say why: %v", err)
	}
	if n := strings.Count(logs.String(), "the database cannot be written"); n != 1 {
		t.Errorf("the log says %d times that the database cannot be written after %d failed writes, want once:\n%s", n, len(failed), logs.String())
	}
	head, err := db.AuditHead(ctx)
	if err != nil {
		t.Fatalf("reading while the disk is full: %v", err)
	}

	disk.Free(t)
	if err := db.Ping(ctx); err != nil {
		t.Fatalf("Ping after space was freed: %v", err)
	}
	if !strings.Contains(logs.String(), "the database can be written again") {
		t.Error("the log does not say that writes succeed again")
	}
	recs := appendN(t, db, 2)
	if recs[0].Seq != head.Seq+1 || head.Seq < before.Seq {
		t.Errorf("the chain continues at %d after head %d (before the disk filled: %d)", recs[0].Seq, head.Seq, before.Seq)
	}
	// Every record is whole and linked: the full disk left nothing torn.
	var prev []byte
	n := int64(0)
	err = db.AuditRecords(ctx, 1, func(r audit.Record) error {
		n++
		if r.Seq != n || (n > 1 && !bytes.Equal(r.PrevHash, prev)) || !bytes.Equal(audit.HashRecord(r), r.Hash) {
			t.Fatalf("record %d does not link or hash", r.Seq)
		}
		prev = r.Hash
		return nil
	})
	if err != nil || n != recs[1].Seq {
		t.Fatalf("walked %d records to head %d: %v", n, recs[1].Seq, err)
	}
}

// TestSQLiteReadyOnlyWithRoom: after writes failed on a full disk, a
// probe that fits in a few freed bytes (or in the WAL's pages already on
// disk) does not end the episode while real writes still fail: Ping, and
// so /readyz, keeps failing until the folder has room again.
func TestSQLiteReadyOnlyWithRoom(t *testing.T) {
	ctx := ctxT(t)
	disk := testenv.NewSmallDisk(t, 4<<20)
	db, err := store.Open(ctx, store.Config{Driver: store.DriverSQLite, DSN: filepath.Join(disk.Dir, store.DefaultSQLiteFile)},
		slog.New(slog.NewJSONHandler(io.Discard, nil)))
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { _ = db.Close() })
	appendN(t, db, 3)

	disk.Fill(t)
	details := []byte(`{"pad":"` + strings.Repeat("x", 16<<10) + `"}`)
	big := func() error {
		return db.AppendAuditRecords(ctx, func(h audit.Head) ([]audit.Record, error) {
			recs := chain(h, 8)
			prev := h.Hash
			for j := range recs {
				recs[j].Details, recs[j].PrevHash = details, prev
				recs[j].Hash = audit.HashRecord(recs[j])
				prev = recs[j].Hash
			}
			return recs, nil
		})
	}
	failed := false
	for i := 0; i < 200 && !failed; i++ {
		failed = big() != nil
	}
	if !failed {
		t.Fatal("200 appends of 128 KiB succeeded on a full disk")
	}
	// Room for the probe's page, not for a batch of records.
	disk.FreeSome(t, 64<<10)
	if err := db.ProbeWrite(ctx); err != nil {
		t.Fatalf("the probe does not fit in 64 KiB, the test proves nothing: %v", err)
	}
	if err := db.Ping(ctx); err == nil {
		t.Fatal("Ping passes with 64 KiB free after writes failed on a full disk: /readyz sends requests that fail")
	} else if !errors.Is(err, store.ErrStorageFault) {
		t.Errorf("Ping's error does not say why: %v", err)
	} else if !strings.Contains(err.Error(), "(disk full)") {
		// What the operator reads in /readyz (docs/operations.md).
		t.Errorf("Ping's error does not name the full disk: %v", err)
	}
	disk.Free(t)
	if err := db.Ping(ctx); err != nil {
		t.Fatalf("Ping after space was freed: %v", err)
	}
	if err := big(); err != nil {
		t.Fatalf("a write after space was freed: %v", err)
	}
}

// TestSQLiteOpenOnFullDisk: a server started while the disk is full fails
// saying why (SQLite alone says "disk I/O error (4874)"), leaves nothing
// that breaks the next start, and starts once space is freed.
func TestSQLiteOpenOnFullDisk(t *testing.T) {
	ctx := ctxT(t)
	disk := testenv.NewSmallDisk(t, 4<<20)
	cfg := store.Config{Driver: store.DriverSQLite, DSN: filepath.Join(disk.Dir, store.DefaultSQLiteFile)}
	db, err := store.Open(ctx, cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	recs := appendN(t, db, 3)
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}

	disk.Fill(t)
	if db, err := store.Open(ctx, cfg, nil); err == nil {
		db.Close()
		t.Log("the store opened on a full disk (SQLite found room in its files)")
	} else if !errors.Is(err, store.ErrStorageFault) {
		t.Errorf("opening on a full disk: %v; want it to name the disk", err)
	}

	disk.Free(t)
	db, err = store.Open(ctx, cfg, nil)
	if err != nil {
		t.Fatalf("opening once space is back: %v", err)
	}
	defer db.Close()
	if h, err := db.AuditHead(ctx); err != nil || h.Seq != recs[2].Seq {
		t.Errorf("head after the restart: %+v, %v; want seq %d", h, err, recs[2].Seq)
	}
	appendN(t, db, 1)
}

// The write Ping makes while writes fail changes nothing, in either dialect.
func TestProbeWrite(t *testing.T) {
	for _, d := range storetest.Dialects() {
		t.Run(d.Name, func(t *testing.T) {
			ctx := ctxT(t)
			db := storetest.Open(t, d.NewConfig(t))
			recs := appendN(t, db, 2)
			for range 3 {
				if err := db.ProbeWrite(ctx); err != nil {
					t.Fatalf("probe: %v", err)
				}
			}
			if h, err := db.AuditHead(ctx); err != nil || h.Seq != recs[1].Seq {
				t.Fatalf("head after probes: %+v, %v", h, err)
			}
			if err := db.Ping(ctx); err != nil {
				t.Fatal(err)
			}
		})
	}
}

// TestPostgresDiskFullOnTheAuditFastPath: PostgreSQL's one-statement
// audit append (the path most appends take) failing with disk_full
// begins an episode like any other write: the log says the database
// cannot be written, and /readyz probes until a write succeeds. (A
// trigger stands in for the full disk.)
func TestPostgresDiskFullOnTheAuditFastPath(t *testing.T) {
	ctx := ctxT(t)
	var logs testenv.SyncBuffer
	db, err := store.Open(ctx, store.Config{Driver: store.DriverPostgres, DSN: testenv.PostgresDSN(t)},
		slog.New(slog.NewJSONHandler(&logs, nil)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = db.Close() })
	appendN(t, db, 2) // the next append takes the fast path
	if err := db.ExecTx(ctx, `CREATE FUNCTION thiqa_test_disk_full() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'could not extend file: No space left on device' USING ERRCODE = '53100';
END
$$`); err != nil {
		t.Fatal(err)
	}
	if err := db.ExecTx(ctx, `CREATE TRIGGER thiqa_test_disk_full BEFORE INSERT ON audit_log
    FOR EACH ROW EXECUTE FUNCTION thiqa_test_disk_full()`); err != nil {
		t.Fatal(err)
	}
	err = db.AppendAuditRecords(ctx, func(h audit.Head) ([]audit.Record, error) { return chain(h, 1), nil })
	if !outage.Is(err) {
		t.Fatalf("an append on a full disk: %v, want an outage", err)
	}
	if !strings.Contains(logs.String(), "the database cannot be written") {
		t.Fatalf("the log does not say that the database cannot be written:\n%s", logs.String())
	}
	if err := db.ExecTx(ctx, "DROP TRIGGER thiqa_test_disk_full ON audit_log"); err != nil {
		t.Fatal(err)
	}
	if err := db.Ping(ctx); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(logs.String(), "the database can be written again") {
		t.Error("Ping did not probe: the episode was never begun")
	}
}
