package audit_test

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/thiqa/thiqa/store/storetest"
)

// TestVerifyWithArchivesAfterLoss: once a range was finished with
// --file-lost, verifying with the files is a break for good (the lost
// records); that known break must not hide what comes after it. Before,
// the first lost range was the only thing reported, so a range recorded
// later by someone with write access to the database, ending at a real
// checkpoint, with its records deleted and no file made (or made to look
// like a second loss), left the report exactly as it was.
func TestVerifyWithArchivesAfterLoss(t *testing.T) {
	for _, d := range storetest.Dialects() {
		t.Run(d.Name, func(t *testing.T) {
			lostOne := "records 1 to 10 were deleted and their archive file a.jsonl.gz"
			setup := func(t *testing.T) (*sinceLog, string) {
				s := newSinceLog(t, d)
				s.crashMidDelete(t, 10) // records 1-10 lost, 11-40 in r.jsonl.gz
				if _, err := s.recoverLost(t, "r.jsonl.gz"); err != nil {
					t.Fatalf("RecoverLostArchive: %v", err)
				}
				s.wantWithFiles(t, false, lostOne, "r.jsonl.gz")
				cp60 := strings.TrimSuffix(strings.SplitAfter(mustReadFile(t, s.cps), "\n")[2], "\n")
				return s, `INSERT INTO audit_archives (first_seq, last_seq, last_hash, file_name, file_sha256, created_unix_ns, state, checkpoint_line)
VALUES (41, 60, ` + blobLiteral(d.Name, s.recs[59].Hash) + `, 'forged.jsonl.gz', ` + blobLiteral(d.Name, bytes.Repeat([]byte{1}, 32)) + `, 1, 'deleting', '` + cp60 + `')`
			}
			t.Run("RangeWithoutFile", func(t *testing.T) {
				s, insert := setup(t)
				execAsAttacker(t, s.cfg, insert, "DELETE FROM audit_log WHERE seq <= 60",
					"UPDATE audit_archives SET state = 'done' WHERE first_seq = 41")
				s.wantFull(t, true)
				s.wantWithFiles(t, false, "no file given holds the archived range 41-60 (forged.jsonl.gz", "r.jsonl.gz")
				s.wantWithFiles(t, false, lostOne, "r.jsonl.gz")
			})
			t.Run("SecondLoss", func(t *testing.T) {
				s, insert := setup(t)
				execAsAttacker(t, s.cfg, insert, "DELETE FROM audit_log WHERE seq <= 60",
					"UPDATE audit_archives SET replaced_from = 61 WHERE first_seq = 41",
					"UPDATE audit_archives SET state = 'done' WHERE first_seq = 41")
				s.wantFull(t, true, "records 41-60 lost with it", "audit verify: WARNING: "+lostOne,
					"audit verify: WARNING: records 41 to 60 were deleted and their archive file forged.jsonl.gz")
				_, out := s.withFiles(t, "r.jsonl.gz")
				for _, want := range []string{lostOne, "records 41 to 60 were deleted and their archive file forged.jsonl.gz",
					"audit archive OK: " + filepath.Join(s.dir, "r.jsonl.gz")} {
					if !strings.Contains(out, want) {
						t.Fatalf("want %q in:\n%s", want, out)
					}
				}
			})
			t.Run("ReplacedBeforeItsRange", func(t *testing.T) {
				// A replacement from before the range's first record is
				// nothing RecoverLostArchive records: the row is malformed.
				s, insert := setup(t)
				execAsAttacker(t, s.cfg, strings.Replace(strings.Replace(insert, "checkpoint_line)", "checkpoint_line, replaced_from)", 1), "')", "', 5)", 1))
				s.wantFull(t, false, "the archived range 41-60 (forged.jsonl.gz) is malformed")
			})
			t.Run("FilesAroundTheLoss", func(t *testing.T) {
				// A range before the lost one and one after it: the files
				// chain to the ranges, not across the lost records.
				s := newSinceLog(t, d)
				s.mustArchive(t, 25, "z.jsonl.gz")
				s.crashMidDeleteFrom(t, 45, 5) // records 21-25 lost, 26-40 in r.jsonl.gz
				if _, err := s.recoverLost(t, "r.jsonl.gz"); err != nil {
					t.Fatalf("RecoverLostArchive: %v", err)
				}
				s.mustArchive(t, 65, "c.jsonl.gz")
				_, out := s.withFiles(t, "c.jsonl.gz", "r.jsonl.gz", "z.jsonl.gz")
				if !strings.Contains(out, "records 21 to 25 were deleted") || strings.Count(out, "audit archive BROKEN") != 1 ||
					strings.Count(out, "audit archive OK: ") != 3 {
					t.Fatalf("want the lost records as the one break, the 3 files matched:\n%s", out)
				}
			})
		})
	}
}

// TestVerifyWithArchivesFileGivenTwice: the same file given twice (a
// path repeated, or a copy) is matched once, not a break of the log.
func TestVerifyWithArchivesFileGivenTwice(t *testing.T) {
	for _, d := range storetest.Dialects() {
		t.Run(d.Name, func(t *testing.T) {
			s := newSinceLog(t, d)
			s.mustArchive(t, 25, "a.jsonl.gz")
			s.mustArchive(t, 45, "b.jsonl.gz")
			if err := os.WriteFile(filepath.Join(s.dir, "copy.jsonl.gz"), []byte(mustReadFile(t, filepath.Join(s.dir, "b.jsonl.gz"))), 0o600); err != nil {
				t.Fatal(err)
			}
			s.wantWithFiles(t, true, "audit archives OK: the 2 files given are the 2 archived ranges", "b.jsonl.gz", "a.jsonl.gz", "copy.jsonl.gz", "a.jsonl.gz")
			s.wantWithFiles(t, true, "copy.jsonl.gz is "+filepath.Join(s.dir, "b.jsonl.gz")+" given again", "b.jsonl.gz", "copy.jsonl.gz", "a.jsonl.gz")
		})
	}
}
