package audit_test

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/thiqa/thiqa/internal/audit"
	"github.com/thiqa/thiqa/store/storetest"
)

// notifiedThrough makes the notifier's cursor seq, as a notifier that
// started at the head and dealt with the records up to seq would have
// left it.
func (s *sinceLog) notifiedThrough(t *testing.T, seq int64) {
	t.Helper()
	if ok, _, err := s.db.Notify().ClaimLease(ctxT(t), "node-1", time.Minute); err != nil || !ok {
		t.Fatalf("ClaimLease: %v %v", ok, err)
	}
	// The first claim starts at the head; a cursor behind is one whose
	// notifier has not caught up yet.
	if err := execErr(s.cfg, "UPDATE notify_state SET cursor_seq = "+strconv.FormatInt(seq, 10)); err != nil {
		t.Fatal(err)
	}
}

// archiveRecord returns the details of the last ArchiveAction record.
func archiveRecord(t *testing.T, s *sinceLog) map[string]any {
	t.Helper()
	var d map[string]any
	err := s.db.AuditRecords(ctxT(t), 1, func(r audit.Record) error {
		if r.Action == audit.ArchiveAction {
			d = nil
			return json.Unmarshal(r.Details, &d)
		}
		return nil
	})
	if err != nil || d == nil {
		t.Fatalf("no %s record: %v", audit.ArchiveAction, err)
	}
	return d
}

// TestArchiveWaitsForNotifier: records the notifications to citizens have
// not reached are not archived: --through past the notifier's cursor is
// refused (nothing written, nothing recorded), --before stops at the
// newest checkpoint the cursor has passed, and a run whose file was
// written with --skip-undelivered and is finished without it is refused
// in the transaction that would record the range. Before, they were
// archived and the notifier skipped them: the citizens were never told.
func TestArchiveWaitsForNotifier(t *testing.T) {
	for _, d := range storetest.Dialects() {
		t.Run(d.Name, func(t *testing.T) {
			s := newSinceLog(t, d)
			s.notifiedThrough(t, 30)
			_, err := s.archive(t, 45, "a.jsonl.gz", func(o *audit.ArchiveOptions) { o.NotifyEnabled = true })
			if !errors.Is(err, audit.ErrUndelivered) || !strings.Contains(err.Error(),
				"records 31 to 40 have not been notified yet; wait for the notifier (thiqa_notify_lag_records) or archive --through 30") {
				t.Fatalf("Archive past the notifier's cursor: %v", err)
			}
			if _, err := os.Stat(filepath.Join(s.dir, "a.jsonl.gz")); !errors.Is(err, os.ErrNotExist) {
				t.Fatalf("a file was written: %v", err)
			}
			if rows, err := s.db.AuditArchives(ctxT(t)); err != nil || len(rows) != 0 {
				t.Fatalf("archived ranges after the refusal: %v %v", rows, err)
			}
			// Up to the cursor: archived.
			if res := s.mustArchive(t, 30, "a.jsonl.gz"); res.Row.LastSeq != 20 || res.Undelivered != 0 {
				t.Fatalf("Archive up to the cursor: %+v", res)
			}
			// --before with every checkpoint left behind the cursor: refused.
			before := func(o *audit.ArchiveOptions) { o.Through, o.Before = 0, time.Now().Add(time.Hour) }
			if _, err := s.archive(t, 0, "b.jsonl.gz", before); !errors.Is(err, audit.ErrUndelivered) ||
				!strings.Contains(err.Error(), "records 31 to 60 have not been notified yet") {
				t.Fatalf("Archive --before past the cursor: %v", err)
			}
			// --before stops at the newest checkpoint the cursor passed.
			if err := s.db.Notify().Advance(ctxT(t), "node-1", 50); err != nil {
				t.Fatal(err)
			}
			res, err := s.archive(t, 0, "b.jsonl.gz", before)
			if err != nil || res.Row.FirstSeq != 21 || res.Row.LastSeq != 40 || !res.NotifyCapped || res.Undelivered != 0 {
				t.Fatalf("Archive --before capped at the cursor: %+v %v", res, err)
			}
			// A file written with --skip-undelivered (the run interrupted
			// before the range was recorded), finished without it: the
			// check in the recording transaction refuses.
			_, err = s.archive(t, 65, "c.jsonl.gz", func(o *audit.ArchiveOptions) {
				o.SkipUndelivered = true
				*o = audit.WithArchiveHooks(*o, func() error { return errCrash }, nil)
			})
			if !errors.Is(err, errCrash) {
				t.Fatalf("Archive killed after the file: %v", err)
			}
			if _, err := s.archive(t, 65, "c.jsonl.gz"); !errors.Is(err, audit.ErrUndelivered) ||
				!strings.Contains(err.Error(), "records 51 to 60 have not been notified yet") {
				t.Fatalf("Archive resumed past the cursor: %v", err)
			}
			if rows, err := s.db.AuditArchives(ctxT(t)); err != nil || len(rows) != 2 {
				t.Fatalf("archived ranges after the refusal: %v %v", rows, err)
			}
			s.wantFull(t, true)
			// Once the notifier has caught up, the same file finishes.
			if err := s.db.Notify().Advance(ctxT(t), "node-1", 70); err != nil {
				t.Fatal(err)
			}
			if res := s.mustArchive(t, 65, "c.jsonl.gz"); !res.Resumed || res.Row.LastSeq != 60 || res.Undelivered != 0 {
				t.Fatalf("Archive resumed once notified: %+v", res)
			}
			s.wantFull(t, true)
		})
	}
}

// TestArchiveSkipUndelivered: with SkipUndelivered, records past the
// notifier's cursor are archived and the archive's audit record says how
// many (and which) were not notified; with no cursor (the notifier never
// ran: it starts at the head) nothing is undelivered.
func TestArchiveSkipUndelivered(t *testing.T) {
	for _, d := range storetest.Dialects() {
		t.Run(d.Name, func(t *testing.T) {
			s := newSinceLog(t, d)
			res := s.mustArchive(t, 25, "a.jsonl.gz")
			if res.Undelivered != 0 {
				t.Fatalf("Archive without a notifier: %+v", res)
			}
			if d := archiveRecord(t, s); d["undelivered"] != nil {
				t.Fatalf("%s record without a notifier: %v", audit.ArchiveAction, d)
			}
			s.notifiedThrough(t, 30)
			res = s.mustArchive(t, 45, "b.jsonl.gz", func(o *audit.ArchiveOptions) { o.SkipUndelivered = true })
			if res.Row.FirstSeq != 21 || res.Row.LastSeq != 40 || res.Undelivered != 10 {
				t.Fatalf("Archive --skip-undelivered: %+v", res)
			}
			if d := archiveRecord(t, s); d["undelivered"] != 10.0 || d["undeliveredFrom"] != 31.0 || d["undeliveredThrough"] != 40.0 {
				t.Fatalf("%s record: %v", audit.ArchiveAction, d)
			}
			s.wantFull(t, true)
		})
	}
}

// TestArchiveRefusalHintHasACheckpoint: the refusal suggests archive
// --through CURSOR only when a signed checkpoint lies between the first
// live record and the cursor. With the cursor at 15 and the checkpoints
// at 20, 40 and 60, that command would only be refused again (no
// checkpoint to end at); before, the refusal suggested it all the same.
func TestArchiveRefusalHintHasACheckpoint(t *testing.T) {
	for _, d := range storetest.Dialects() {
		t.Run(d.Name, func(t *testing.T) {
			s := newSinceLog(t, d)
			s.notifiedThrough(t, 15)
			for _, tc := range []struct {
				name string
				opt  func(*audit.ArchiveOptions)
			}{
				{"Through", func(o *audit.ArchiveOptions) { o.NotifyEnabled = true }},
				{"Before", func(o *audit.ArchiveOptions) {
					o.NotifyEnabled, o.Through, o.Before = true, 0, time.Now().Add(time.Hour)
				}},
			} {
				_, err := s.archive(t, 45, "a.jsonl.gz", tc.opt)
				if !errors.Is(err, audit.ErrUndelivered) || !strings.Contains(err.Error(), "records 16 to ") ||
					strings.Contains(err.Error(), "--through 15") {
					t.Fatalf("%s: Archive with no checkpoint behind the cursor: %v", tc.name, err)
				}
				if _, err := s.archive(t, 15, "a.jsonl.gz"); !errors.Is(err, audit.ErrNoArchiveCheckpoint) {
					t.Fatalf("Archive --through the cursor: %v", err)
				}
			}
			// Once a checkpoint is behind the cursor, it is suggested, and
			// it works.
			if err := s.db.Notify().Advance(ctxT(t), "node-1", 30); err != nil {
				t.Fatal(err)
			}
			if _, err := s.archive(t, 45, "a.jsonl.gz", func(o *audit.ArchiveOptions) { o.NotifyEnabled = true }); !errors.Is(err, audit.ErrUndelivered) ||
				!strings.Contains(err.Error(), "or archive --through 30") {
				t.Fatalf("Archive past the cursor at 30: %v", err)
			}
			if res := s.mustArchive(t, 30, "a.jsonl.gz"); res.Row.LastSeq != 20 {
				t.Fatalf("Archive --through the cursor: %+v", res)
			}
		})
	}
}

// TestArchiveRacesNotifier: the notifier moves its cursor while archives
// run, on both databases: every range recorded ends at or before the
// cursor as read after it was recorded (the cursor only moves forward),
// every run either archives or refuses with ErrUndelivered, and the log
// verifies. A guard for the check in the recording transaction (it passes
// as merged).
func TestArchiveRacesNotifier(t *testing.T) {
	for _, d := range storetest.Dialects() {
		t.Run(d.Name, func(t *testing.T) {
			s := newSinceLog(t, d)
			s.notifiedThrough(t, 0)
			done := make(chan error, 1)
			go func() {
				var err error
				for seq := int64(1); seq <= 70 && err == nil; seq++ {
					err = s.db.Notify().Advance(ctxT(t), "node-1", seq)
					time.Sleep(time.Millisecond)
				}
				done <- err
			}()
			before := func(o *audit.ArchiveOptions) { o.Through, o.Before = 0, time.Now().Add(time.Hour) }
			var last int64
			for i := 0; last < 60 && i < 10000; i++ {
				res, err := s.archive(t, 0, "a"+strconv.Itoa(i)+".jsonl.gz", before)
				if errors.Is(err, audit.ErrUndelivered) {
					time.Sleep(time.Millisecond)
					continue
				}
				if err != nil {
					t.Fatalf("Archive while the notifier runs: %v", err)
				}
				cursor, _, err := s.db.AuditNotifyCursor(ctxT(t))
				if err != nil || res.Row.LastSeq > cursor || res.Row.FirstSeq != last+1 || res.Undelivered != 0 {
					t.Fatalf("Archive while the notifier runs: %+v, cursor %d after it (%v)", res.Row, cursor, err)
				}
				last = res.Row.LastSeq
			}
			if err := <-done; err != nil {
				t.Fatalf("Advance: %v", err)
			}
			if last != 60 {
				t.Fatalf("archived through %d, want 60", last)
			}
			s.wantFull(t, true)
		})
	}
}
