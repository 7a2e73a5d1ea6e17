package audit_test

import (
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/thiqa/thiqa/internal/audit"
	"github.com/thiqa/thiqa/store"
	"github.com/thiqa/thiqa/store/storetest"
)

// errCrash stands for a kill -9 in an archive test.
var errCrash = errors.New("crash")

// archive runs Archive over s through seq into dir/name.
func (s *sinceLog) archive(t *testing.T, through int64, name string, o ...func(*audit.ArchiveOptions)) (audit.ArchiveResult, error) {
	t.Helper()
	opts := audit.ArchiveOptions{Through: through, Out: filepath.Join(s.dir, name), CheckpointFile: s.cps,
		CheckpointKeyFile: s.pub, Actor: "tester"}
	for _, f := range o {
		f(&opts)
	}
	return audit.Archive(ctxT(t), s.db, opts)
}

func (s *sinceLog) mustArchive(t *testing.T, through int64, name string, o ...func(*audit.ArchiveOptions)) audit.ArchiveResult {
	t.Helper()
	res, err := s.archive(t, through, name, o...)
	if err != nil {
		t.Fatalf("Archive through %d: %v", through, err)
	}
	return res
}

// wantFull runs VerifyAll and wants it ok (or not), with texts in its output.
func (s *sinceLog) wantFull(t *testing.T, ok bool, texts ...string) string {
	t.Helper()
	got, out := s.full(t)
	if got != ok {
		t.Fatalf("VerifyAll: ok %v, want %v\n%s", got, ok, out)
	}
	for _, text := range texts {
		if !strings.Contains(out, text) {
			t.Fatalf("VerifyAll: want %q in:\n%s", text, out)
		}
	}
	return out
}

// verifyFiles runs VerifyArchiveFiles over the files (names in s.dir).
func (s *sinceLog) verifyFiles(t *testing.T, names ...string) (bool, string) {
	t.Helper()
	paths := make([]string, len(names))
	for i, n := range names {
		paths[i] = filepath.Join(s.dir, n)
	}
	var out bytes.Buffer
	ok, err := audit.VerifyArchiveFiles(paths, s.pub, &out)
	if err != nil {
		t.Fatalf("VerifyArchiveFiles: %v", err)
	}
	return ok, out.String()
}

// tamperArchives changes audit_archives (and audit_log) behind the
// store's back, its triggers dropped first.
func tamperArchives(t *testing.T, cfg store.Config, stmts ...string) {
	t.Helper()
	drop := "DROP TRIGGER audit_archives_no_update"
	if cfg.Driver == store.DriverPostgres {
		drop = "ALTER TABLE audit_archives DISABLE TRIGGER USER"
	}
	tamper(t, cfg, append([]string{drop}, stmts...)...)
}

// liveCount counts the live records.
func liveCount(t *testing.T, db *store.DB) (n int64, first int64) {
	t.Helper()
	err := db.AuditRecords(ctxT(t), 1, func(r audit.Record) error {
		if n == 0 {
			first = r.Seq
		}
		n++
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return n, first
}

// TestArchive: `thiqa audit archive` moves the oldest records into a
// verified file ending at a signed checkpoint, the full verification
// starts from the archived range, and tampering with either is caught.
func TestArchive(t *testing.T) {
	for _, d := range storetest.Dialects() {
		t.Run(d.Name, func(t *testing.T) { testArchive(t, d) })
	}
}

func testArchive(t *testing.T, d storetest.Dialect) {
	t.Run("ArchiveThenVerify", func(t *testing.T) {
		s := newSinceLog(t, d)
		res := s.mustArchive(t, 45, "a1.jsonl.gz")
		if r := res.Row; r.FirstSeq != 1 || r.LastSeq != 40 || res.Records != 40 || res.Deleted != 40 || r.State != audit.ArchiveDone ||
			!bytes.Equal(r.LastHash, s.recs[39].Hash) || res.Bytes == 0 {
			t.Fatalf("Archive through 45: %+v", res)
		}
		if n, first := liveCount(t, s.db); first != 41 || n != 31 {
			t.Fatalf("live log: %d records from %d, want 31 from 41 (30 + the archive's record)", n, first)
		}
		// The checkpoint writer goes on after its last checkpoint's record
		// was archived (here: 60 is live; archive through it below).
		if n := storetest.AuditCount(t, s.db, audit.ArchiveAction, audit.OutcomeSuccess); n != 1 {
			t.Fatalf("%d audit.archive records, want 1", n)
		}
		if out := s.wantFull(t, true, "records 1 to 40 are archived in a1.jsonl.gz (seq 1-40, SHA-256 ", "audit chain OK: 31 records, head seq 71",
			"audit checkpoints OK: 3 verified, the last at seq 60"); strings.Contains(out, "WARNING") {
			t.Fatalf("VerifyAll warns:\n%s", out)
		}
		// Without the checkpoint at the range's end (another node's file),
		// the checkpoint the range keeps vouches for it.
		lines := strings.SplitAfter(mustReadFile(t, s.cps), "\n")
		noEnd := writeLines(t, t.TempDir(), "cps.jsonl", lines[0], lines[2])
		var out bytes.Buffer
		if ok, err := audit.VerifyAll(ctxT(t), s.db, noEnd, s.pub, &out); err != nil || !ok ||
			!strings.Contains(out.String(), "1 of the 1 archived ranges end at a record no checkpoint") || strings.Contains(out.String(), "WARNING") {
			t.Fatalf("VerifyAll without the checkpoint at the archive's end: %v %v\n%s", ok, err, out.String())
		}
		if rep := verify(t, s.db); !rep.OK() || rep.Verified != 31 || rep.Archived.Below != 41 {
			t.Fatalf("Verify: %s (%+v)", rep, rep.Archived)
		}
		// --since keeps working, from a live anchor or an archived one.
		if ok, out, err := s.since(t, 61, s.cps); err != nil || !ok || !strings.Contains(out, "INCREMENTAL from seq 60,") {
			t.Fatalf("VerifySince(61): %v %v\n%s", ok, err, out)
		}
		if ok, out, err := s.since(t, 30, s.cps); err != nil || !ok || !strings.Contains(out, "at seq 20, which is archived") {
			t.Fatalf("VerifySince(30): %v %v\n%s", ok, err, out)
		}
		if ok, out := s.verifyFiles(t, "a1.jsonl.gz"); !ok || !strings.Contains(out, "records 1 to 40 (40)") {
			t.Fatalf("VerifyArchiveFiles: %v\n%s", ok, out)
		}
		// A second archive continues the first; the files chain.
		res2 := s.mustArchive(t, 70, "a2.jsonl.gz")
		if r := res2.Row; r.FirstSeq != 41 || r.LastSeq != 60 || res2.Records != 20 {
			t.Fatalf("second archive: %+v", res2)
		}
		s.wantFull(t, true, "records 1 to 60 are archived in a1.jsonl.gz (seq 1-40", "a2.jsonl.gz (seq 41-60", "head seq 72")
		w := newWriter(t, s.db, s.key, s.cps, func() time.Time { return time.Date(2026, 11, 23, 0, 0, 0, 0, time.UTC) })
		if c := mustCheckpoint(t, w, true); c.Seq != 72 {
			t.Fatalf("checkpoint after the archive of its last one's record: %+v", c)
		}
		s.wantFull(t, true, "audit checkpoints OK: 4 verified, the last at seq 72")
		if ok, out := s.verifyFiles(t, "a1.jsonl.gz", "a2.jsonl.gz"); !ok || !strings.Contains(out, "records 41 to 60 (20)") {
			t.Fatalf("VerifyArchiveFiles: %v\n%s", ok, out)
		}
		if ok, out := s.verifyFiles(t, "a2.jsonl.gz", "a1.jsonl.gz"); ok || !strings.Contains(out, "does not continue the file before it") {
			t.Fatalf("VerifyArchiveFiles out of order: %v\n%s", ok, out)
		}
		// The same file again: nothing to do.
		if res := s.mustArchive(t, 70, "a2.jsonl.gz"); !res.AlreadyDone {
			t.Fatalf("rerun of a finished archive: %+v", res)
		}
	})
	t.Run("Before", func(t *testing.T) {
		s := newSinceLog(t, d)
		res := s.mustArchive(t, 0, "b.jsonl.gz", func(o *audit.ArchiveOptions) { o.Before = s.recs[44].Time })
		if res.Row.LastSeq != 40 {
			t.Fatalf("Archive before record 45's time: %+v", res.Row)
		}
		_, err := s.archive(t, 0, "b2.jsonl.gz", func(o *audit.ArchiveOptions) { o.Before = s.recs[0].Time })
		if !errors.Is(err, audit.ErrAlreadyArchived) && !errors.Is(err, audit.ErrNoArchiveCheckpoint) {
			t.Fatalf("Archive before record 1: %v", err)
		}
		s.wantFull(t, true)
	})
	t.Run("Refusals", func(t *testing.T) {
		s := newSinceLog(t, d)
		for _, c := range []struct {
			through int64
			want    error
		}{{71, audit.ErrBeyondHead}, {19, audit.ErrNoArchiveCheckpoint}} {
			if _, err := s.archive(t, c.through, "r.jsonl.gz"); !errors.Is(err, c.want) {
				t.Fatalf("Archive through %d: %v, want %v", c.through, err, c.want)
			}
		}
		if _, err := os.Stat(filepath.Join(s.dir, "r.jsonl.gz")); !errors.Is(err, os.ErrNotExist) {
			t.Fatalf("a refused archive left its file: %v", err)
		}
		other := filepath.Join(s.dir, "other.txt")
		if err := os.WriteFile(other, []byte("keep me"), 0o600); err != nil {
			t.Fatal(err)
		}
		if _, err := s.archive(t, 45, "other.txt"); !errors.Is(err, audit.ErrArchiveOutExists) {
			t.Fatalf("Archive over an existing file: %v", err)
		}
		if b, _ := os.ReadFile(other); string(b) != "keep me" {
			t.Fatalf("the existing file was overwritten: %q", b)
		}
		s.mustArchive(t, 45, "a.jsonl.gz")
		if _, err := s.archive(t, 30, "again.jsonl.gz"); !errors.Is(err, audit.ErrAlreadyArchived) {
			t.Fatalf("Archive of an archived range: %v", err)
		}
		// Through 50: the newest checkpoint at or before it is 40, archived.
		if _, err := s.archive(t, 50, "again.jsonl.gz"); !errors.Is(err, audit.ErrNoArchiveCheckpoint) {
			t.Fatalf("Archive with no checkpoint past the archived range: %v", err)
		}
		s.wantFull(t, true)
	})
	t.Run("CrashAfterFile", func(t *testing.T) {
		s := newSinceLog(t, d)
		_, err := s.archive(t, 45, "c.jsonl.gz", func(o *audit.ArchiveOptions) {
			*o = audit.WithArchiveHooks(*o, func() error { return errCrash }, nil)
		})
		if !errors.Is(err, errCrash) {
			t.Fatalf("Archive with a crash after the file: %v", err)
		}
		if n, first := liveCount(t, s.db); n != 70 || first != 1 {
			t.Fatalf("after a crash before any delete: %d records from %d", n, first)
		}
		s.wantFull(t, true)
		res := s.mustArchive(t, 45, "c.jsonl.gz")
		if !res.Resumed || res.Deleted != 40 || res.Row.State != audit.ArchiveDone {
			t.Fatalf("rerun: %+v", res)
		}
		s.wantFull(t, true, "records 1 to 40 are archived")
	})
	t.Run("CrashMidDelete", func(t *testing.T) {
		s := newSinceLog(t, d)
		batches := 0
		_, err := s.archive(t, 45, "m.jsonl.gz", func(o *audit.ArchiveOptions) {
			o.BatchSize = 7
			*o = audit.WithArchiveHooks(*o, nil, func(int64) error {
				if batches++; batches == 2 {
					return errCrash
				}
				return nil
			})
		})
		if !errors.Is(err, errCrash) {
			t.Fatalf("Archive with a crash mid-delete: %v", err)
		}
		if _, first := liveCount(t, s.db); first != 15 {
			t.Fatalf("after 2 batches of 7 the live log starts at %d", first)
		}
		// Half deleted: still a valid log, anchored by the range's row.
		s.wantFull(t, true, "deleting")
		// A new archive waits for this one.
		if _, err := s.archive(t, 65, "n.jsonl.gz"); !errors.Is(err, audit.ErrArchiveUnfinished) {
			t.Fatalf("Archive while another is unfinished: %v", err)
		}
		res := s.mustArchive(t, 45, "m.jsonl.gz")
		if !res.Resumed || res.Deleted != 40-14 || res.Row.State != audit.ArchiveDone {
			t.Fatalf("rerun: %+v", res)
		}
		if n := storetest.AuditCount(t, s.db, audit.ArchiveAction, audit.OutcomeSuccess); n != 1 {
			t.Fatalf("%d audit.archive records after the rerun, want 1", n)
		}
		s.wantFull(t, true, "records 1 to 40 are archived")
	})
	t.Run("DeleteWithoutArchiveRowDetected", func(t *testing.T) {
		s := newSinceLog(t, d)
		tamper(t, s.cfg, "DELETE FROM audit_log WHERE seq <= 20")
		s.wantFull(t, false, "audit chain BROKEN: audit chain broken at seq 1 (seq-gap)")
		if _, err := s.archive(t, 45, "t.jsonl.gz"); !errors.Is(err, audit.ErrArchiveConflict) {
			t.Fatalf("Archive of a broken log: %v", err)
		}
	})
	t.Run("DeleteAfterArchiveDetected", func(t *testing.T) {
		s := newSinceLog(t, d)
		s.mustArchive(t, 45, "t.jsonl.gz")
		tamper(t, s.cfg, "DELETE FROM audit_log WHERE seq <= 50")
		s.wantFull(t, false, "audit chain broken at seq 41 (seq-gap)")
	})
	t.Run("ArchiveRowEditedDetected", func(t *testing.T) {
		s := newSinceLog(t, d)
		s.mustArchive(t, 45, "t.jsonl.gz")
		tamperArchives(t, s.cfg, fmt.Sprintf("UPDATE audit_archives SET last_hash = %s WHERE first_seq = 1", blobLiteral(d.Name, s.recs[38].Hash)))
		s.wantFull(t, false, "audit chain broken at seq 41 (prev-hash-mismatch)")
	})
	t.Run("ArchiveRowAndFirstLiveRewrittenDetectedByCheckpoint", func(t *testing.T) {
		s := newSinceLog(t, d)
		s.mustArchive(t, 45, "t.jsonl.gz")
		// Head at 71: rewrite 41..71 consistently from a fake row hash.
		fake := bytes.Repeat([]byte{7}, 32)
		var recs []audit.Record
		if err := s.db.AuditRecords(ctxT(t), 41, func(r audit.Record) error { recs = append(recs, r); return nil }); err != nil {
			t.Fatal(err)
		}
		prev := fake
		var stmts []string
		for _, r := range recs {
			r.PrevHash = prev
			r.Hash = audit.HashRecord(r)
			prev = r.Hash
			stmts = append(stmts, fmt.Sprintf("UPDATE audit_log SET prev_hash = %s, hash = %s WHERE seq = %d",
				blobLiteral(d.Name, r.PrevHash), blobLiteral(d.Name, r.Hash), r.Seq))
		}
		stmts = append(stmts, fmt.Sprintf("UPDATE audit_head SET hash = %s WHERE id = 1", blobLiteral(d.Name, prev)))
		tamperArchives(t, s.cfg, append(stmts, fmt.Sprintf("UPDATE audit_archives SET last_hash = %s WHERE first_seq = 1", blobLiteral(d.Name, fake)))...)
		if rep := verify(t, s.db); !rep.OK() {
			t.Fatalf("the chain alone should be consistent: %s", rep)
		}
		s.wantFull(t, false, "checkpoint 2 (seq 40): the archived range ending at record 40 records another hash than this checkpoint")
	})
	t.Run("ArchivedRecordStillLiveDetected", func(t *testing.T) {
		s := newSinceLog(t, d)
		s.mustArchive(t, 45, "t.jsonl.gz")
		r := s.recs[4]
		tamper(t, s.cfg, fmt.Sprintf(`INSERT INTO audit_log (seq, at_unix_ns, actor, action, object, outcome, details, prev_hash, hash)
VALUES (5, %d, '%s', '%s', '%s', '%s', '%s', %s, %s)`, r.Time.UnixNano(), r.Actor, r.Action, r.Object, r.Outcome, r.Details,
			blobLiteral(d.Name, r.PrevHash), blobLiteral(d.Name, r.Hash)))
		s.wantFull(t, false, "audit chain broken at seq 5 (archive-mismatch): record 5 is in the live log although it is archived")
	})
	t.Run("FirstLivePrevHashEditedDetected", func(t *testing.T) {
		s := newSinceLog(t, d)
		s.mustArchive(t, 45, "t.jsonl.gz")
		tamper(t, s.cfg, fmt.Sprintf("UPDATE audit_log SET prev_hash = %s WHERE seq = 41", blobLiteral(d.Name, s.recs[38].Hash)))
		s.wantFull(t, false, "audit chain broken at seq 41 (prev-hash-mismatch)")
	})
	t.Run("ArchiveFileEditedDetected", func(t *testing.T) {
		s := newSinceLog(t, d)
		s.mustArchive(t, 45, "t.jsonl.gz")
		path := filepath.Join(s.dir, "t.jsonl.gz")
		plain := gunzip(t, path)
		edited := bytes.Replace(plain, []byte(`"actor":"tester"`), []byte(`"actor":"mallory"`), 1)
		if bytes.Equal(edited, plain) {
			t.Fatal("nothing to edit")
		}
		writeGzip(t, path, edited)
		if ok, out := s.verifyFiles(t, "t.jsonl.gz"); ok || !strings.Contains(out, "record 1 does not match its hash (edited)") {
			t.Fatalf("VerifyArchiveFiles of an edited file: %v\n%s", ok, out)
		}
		// The trailer's count edited.
		writeGzip(t, path, bytes.Replace(plain, []byte(`{"trailer":true,"records":40,`), []byte(`{"trailer":true,"records":39,`), 1))
		if ok, out := s.verifyFiles(t, "t.jsonl.gz"); ok || !strings.Contains(out, "the trailer counts 39 records, the file holds 40") {
			t.Fatalf("VerifyArchiveFiles with the trailer's count edited: %v\n%s", ok, out)
		}
	})
	t.Run("ArchiveFileTruncatedDetected", func(t *testing.T) {
		s := newSinceLog(t, d)
		s.mustArchive(t, 45, "t.jsonl.gz")
		path := filepath.Join(s.dir, "t.jsonl.gz")
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, b[:len(b)/2], 0o600); err != nil {
			t.Fatal(err)
		}
		if ok, out := s.verifyFiles(t, "t.jsonl.gz"); ok || !strings.Contains(out, "BROKEN") {
			t.Fatalf("VerifyArchiveFiles of a truncated file: %v\n%s", ok, out)
		}
		// Cut at a line boundary and compressed again: the trailer is missing.
		plain := gunzip(t, filepath.Join(s.dir, "t.jsonl.gz"), b)
		cut := plain[:bytes.LastIndexByte(plain[:len(plain)-1], '\n')+1]
		writeGzip(t, path, cut)
		if ok, out := s.verifyFiles(t, "t.jsonl.gz"); ok || !strings.Contains(out, "truncated") {
			t.Fatalf("VerifyArchiveFiles without its trailer: %v\n%s", ok, out)
		}
	})
	t.Run("ConcurrentAppends", func(t *testing.T) {
		s := newSinceLog(t, d)
		l := newLog(t, s.db, nil)
		var stop atomic.Bool
		var appended atomic.Int64
		var wg sync.WaitGroup
		for w := range 4 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := 0; !stop.Load(); i++ {
					if _, err := l.Append(context.Background(), audit.Entry{Actor: fmt.Sprintf("w%d", w), Action: "test.append", Outcome: audit.OutcomeSuccess}); err != nil {
						t.Errorf("Append: %v", err)
						return
					}
					appended.Add(1)
				}
			}()
		}
		time.Sleep(20 * time.Millisecond)
		res := s.mustArchive(t, 65, "c.jsonl.gz", func(o *audit.ArchiveOptions) { o.BatchSize = 3 })
		time.Sleep(20 * time.Millisecond)
		stop.Store(true)
		wg.Wait()
		head, err := s.db.AuditHead(ctxT(t))
		if err != nil {
			t.Fatal(err)
		}
		n, first := liveCount(t, s.db)
		if res.Row.LastSeq != 60 || first != 61 || head.Seq != 70+appended.Load()+1 || n != head.Seq-60 {
			t.Fatalf("archive %+v; live %d from %d; head %d; %d appended", res.Row, n, first, head.Seq, appended.Load())
		}
		s.wantFull(t, true, "records 1 to 60 are archived")
	})
}

// gunzip returns the decompressed contents of the file at path (or of b).
func gunzip(t *testing.T, path string, b ...[]byte) []byte {
	t.Helper()
	raw := []byte(nil)
	if len(b) > 0 {
		raw = b[0]
	} else {
		var err error
		if raw, err = os.ReadFile(path); err != nil {
			t.Fatal(err)
		}
	}
	zr, err := gzip.NewReader(bytes.NewReader(raw))
	if err != nil {
		t.Fatal(err)
	}
	out, err := io.ReadAll(zr)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func writeGzip(t *testing.T, path string, plain []byte) {
	t.Helper()
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	zw.Write(plain)
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, buf.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
}

// racingStore runs race once, at the first walk of the chain: an archive
// that deletes the oldest records after the verification has read where
// the live log starts.
type racingStore struct {
	*store.DB
	once sync.Once
	race func()
}

func (r *racingStore) AuditRecords(ctx context.Context, from int64, fn func(audit.Record) error) error {
	r.once.Do(r.race)
	return r.DB.AuditRecords(ctx, from, fn)
}

// TestVerifyDuringArchive: a verification that overlaps an archive run
// does not report the records that archive deleted as removed.
func TestVerifyDuringArchive(t *testing.T) {
	for _, d := range storetest.Dialects() {
		t.Run(d.Name, func(t *testing.T) {
			s := newSinceLog(t, d)
			st := &racingStore{DB: s.db, race: func() { s.mustArchive(t, 25, "a1.jsonl.gz") }}
			if rep, err := audit.Verify(ctxT(t), st); err != nil || !rep.OK() || rep.Archived.Below != 21 {
				t.Fatalf("Verify during an archive: %s %v", rep, err)
			}
			st = &racingStore{DB: s.db, race: func() { s.mustArchive(t, 45, "a2.jsonl.gz") }}
			var out bytes.Buffer
			if ok, err := audit.VerifyAll(ctxT(t), st, s.cps, s.pub, &out); err != nil || !ok || !strings.Contains(out.String(), "records 1 to 40 are archived") {
				t.Fatalf("VerifyAll during an archive: %v %v\n%s", ok, err, out.String())
			}
		})
	}
}
