package audit_test

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/thiqa/thiqa/internal/audit"
	"github.com/thiqa/thiqa/store/storetest"
)

// crashMidDelete runs an archive through seq 45 (records 1-40) into
// a.jsonl.gz that is killed after its first delete transaction of batch
// records, then loses the file.
func (s *sinceLog) crashMidDelete(t *testing.T, batch int) {
	t.Helper()
	s.crashMidDeleteFrom(t, 45, batch)
}

// crashMidDeleteFrom is crashMidDelete with the archive through seq
// through.
func (s *sinceLog) crashMidDeleteFrom(t *testing.T, through int64, batch int) {
	t.Helper()
	_, err := s.archive(t, through, "a.jsonl.gz", func(o *audit.ArchiveOptions) {
		o.BatchSize = batch
		*o = audit.WithArchiveHooks(*o, nil, func(int64) error { return errCrash })
	})
	if !errors.Is(err, errCrash) {
		t.Fatalf("Archive killed mid-delete: %v", err)
	}
	if err := os.Remove(filepath.Join(s.dir, "a.jsonl.gz")); err != nil {
		t.Fatal(err)
	}
}

// recoverLost runs RecoverLostArchive with dir/name as the replacement.
func (s *sinceLog) recoverLost(t *testing.T, name string, o ...func(*audit.ArchiveOptions)) (audit.ArchiveResult, error) {
	t.Helper()
	opts := audit.ArchiveOptions{Out: filepath.Join(s.dir, name), CheckpointFile: s.cps, CheckpointKeyFile: s.pub, Actor: "tester"}
	for _, f := range o {
		f(&opts)
	}
	return audit.RecoverLostArchive(ctxT(t), s.db, opts)
}

// lostRecord returns the details of the ArchiveLostAction record.
func lostRecord(t *testing.T, s *sinceLog) map[string]any {
	t.Helper()
	var d map[string]any
	err := s.db.AuditRecords(ctxT(t), 1, func(r audit.Record) error {
		if r.Action == audit.ArchiveLostAction {
			return json.Unmarshal(r.Details, &d)
		}
		return nil
	})
	if err != nil || d == nil {
		t.Fatalf("no %s record: %v", audit.ArchiveLostAction, err)
	}
	return d
}

// TestArchiveFileLost: a range stuck deleting whose file was lost is
// finished with a new file of its records still live (--file-lost), the
// loss recorded in the range's row and an audit record; the live log
// verifies, later archives run, and verifying with the files names the
// lost records. Before, such a range blocked every later archive and
// nothing could finish it.
func TestArchiveFileLost(t *testing.T) {
	for _, d := range storetest.Dialects() {
		t.Run(d.Name, func(t *testing.T) {
			t.Run("PartlyDeleted", func(t *testing.T) {
				s := newSinceLog(t, d)
				s.crashMidDelete(t, 10) // records 1-10 gone with the file
				if _, err := s.archive(t, 65, "c.jsonl.gz"); !errors.Is(err, audit.ErrArchiveUnfinished) || !strings.Contains(err.Error(), "--file-lost") {
					t.Fatalf("Archive with a range stuck deleting: %v", err)
				}
				s.wantFull(t, true)
				res, err := s.recoverLost(t, "r.jsonl.gz")
				if err != nil {
					t.Fatalf("RecoverLostArchive: %v", err)
				}
				if r := res.Row; r.ReplacedFrom != 11 || r.ReplacementFile != "r.jsonl.gz" || r.State != audit.ArchiveDone || res.Records != 30 || res.Deleted != 30 {
					t.Fatalf("RecoverLostArchive: %+v", res)
				}
				if d := lostRecord(t, s); d["lostFrom"] != 1.0 || d["lostThrough"] != 10.0 || d["replacedFrom"] != 11.0 || d["file"] != "a.jsonl.gz" {
					t.Fatalf("%s record: %v", audit.ArchiveLostAction, d)
				}
				s.wantFull(t, true, "a.jsonl.gz (seq 1-40, SHA-256 ", "file lost: records 11-40 in r.jsonl.gz", "records 1-10 lost with it")
				// The range keeps what replaced its file.
				if err := execErr(s.cfg, "UPDATE audit_archives SET replaced_from = 1 WHERE first_seq = 1"); err == nil {
					t.Fatal("the replacement of a finished range was changed")
				}
				s.mustArchive(t, 65, "c.jsonl.gz")
				s.wantFull(t, true)
				if ok, out := s.verifyFiles(t, "r.jsonl.gz", "c.jsonl.gz"); !ok {
					t.Fatalf("VerifyArchiveFiles of the replacement and the next file:\n%s", out)
				}
				s.wantWithFiles(t, false, "records 1 to 10 were deleted and their archive file a.jsonl.gz (SHA-256 ", "r.jsonl.gz", "c.jsonl.gz")
			})
			t.Run("AllDeleted", func(t *testing.T) {
				s := newSinceLog(t, d)
				s.crashMidDelete(t, 1000) // killed before the range was marked done
				res, err := s.recoverLost(t, "r.jsonl.gz")
				if err != nil {
					t.Fatalf("RecoverLostArchive: %v", err)
				}
				if r := res.Row; r.ReplacedFrom != 41 || r.ReplacementFile != "" || r.State != audit.ArchiveDone {
					t.Fatalf("RecoverLostArchive: %+v", res)
				}
				if _, err := os.Stat(filepath.Join(s.dir, "r.jsonl.gz")); !errors.Is(err, os.ErrNotExist) {
					t.Fatalf("a replacement was written for no record: %v", err)
				}
				s.wantFull(t, true, "a.jsonl.gz (seq 1-40, SHA-256 ", "file lost, records 1-40 lost with it")
				s.mustArchive(t, 65, "c.jsonl.gz")
				s.wantWithFiles(t, false, "records 1 to 40 were deleted and their archive file a.jsonl.gz", "c.jsonl.gz")
				if _, err := s.recoverLost(t, "r2.jsonl.gz"); !errors.Is(err, audit.ErrNoUnfinishedArchive) {
					t.Fatalf("RecoverLostArchive with nothing unfinished: %v", err)
				}
			})
			t.Run("Interrupted", func(t *testing.T) {
				s := newSinceLog(t, d)
				s.crashMidDelete(t, 10)
				_, err := s.recoverLost(t, "r.jsonl.gz", func(o *audit.ArchiveOptions) {
					o.BatchSize = 5
					*o = audit.WithArchiveHooks(*o, nil, func(int64) error { return errCrash })
				})
				if !errors.Is(err, errCrash) {
					t.Fatalf("RecoverLostArchive killed mid-delete: %v", err)
				}
				s.wantFull(t, true)
				if err := execErr(s.cfg, "UPDATE audit_archives SET replaced_from = 12 WHERE first_seq = 1"); err == nil {
					t.Fatal("the replacement of a range was changed")
				}
				if _, err := s.archive(t, 65, "c.jsonl.gz"); !errors.Is(err, audit.ErrArchiveUnfinished) || !strings.Contains(err.Error(), "r.jsonl.gz") {
					t.Fatalf("Archive with a replacement unfinished: %v", err)
				}
				if _, err := s.recoverLost(t, "other.jsonl.gz"); !errors.Is(err, audit.ErrArchiveUnfinished) {
					t.Fatalf("RecoverLostArchive again with another file: %v", err)
				}
				res, err := s.recoverLost(t, "r.jsonl.gz")
				if err != nil || !res.Resumed || res.Row.State != audit.ArchiveDone || res.Deleted != 25 {
					t.Fatalf("RecoverLostArchive again: %+v %v", res, err)
				}
				s.mustArchive(t, 65, "c.jsonl.gz")
				s.wantFull(t, true)
			})
			t.Run("FileThere", func(t *testing.T) {
				// Run while the archive still deletes with its file (or
				// with the file found again next to --out): nothing is
				// lost, so nothing is declared lost.
				s := newSinceLog(t, d)
				_, err := s.archive(t, 45, "a.jsonl.gz", func(o *audit.ArchiveOptions) {
					o.BatchSize = 10
					*o = audit.WithArchiveHooks(*o, nil, func(int64) error { return errCrash })
				})
				if !errors.Is(err, errCrash) {
					t.Fatalf("Archive killed mid-delete: %v", err)
				}
				if _, err := s.recoverLost(t, "r.jsonl.gz"); !errors.Is(err, audit.ErrArchiveUnfinished) || !strings.Contains(err.Error(), "is not lost") {
					t.Fatalf("RecoverLostArchive with the range's file there: %v", err)
				}
				if _, err := os.Stat(filepath.Join(s.dir, "r.jsonl.gz")); !errors.Is(err, os.ErrNotExist) {
					t.Fatalf("a replacement was written: %v", err)
				}
				s.mustArchive(t, 45, "a.jsonl.gz")
				s.wantWithFiles(t, true, "audit archives OK", "a.jsonl.gz")
			})
			t.Run("NothingLost", func(t *testing.T) {
				// The file written with the range is there: nothing to recover.
				s := newSinceLog(t, d)
				if _, err := s.recoverLost(t, "r.jsonl.gz"); !errors.Is(err, audit.ErrNoUnfinishedArchive) {
					t.Fatalf("RecoverLostArchive with no archive: %v", err)
				}
			})
		})
	}
}
