package audit_test

import (
	"bytes"
	"errors"
	"path/filepath"
	"strings"
	"testing"

	"github.com/thiqa/thiqa/internal/audit"
	"github.com/thiqa/thiqa/store/storetest"
)

// withFiles runs VerifyAllWithArchives over the files (names in s.dir).
func (s *sinceLog) withFiles(t *testing.T, names ...string) (bool, string) {
	t.Helper()
	paths := make([]string, len(names))
	for i, n := range names {
		paths[i] = filepath.Join(s.dir, n)
	}
	var out bytes.Buffer
	ok, err := audit.VerifyAllWithArchives(ctxT(t), s.db, s.cps, s.pub, paths, &out)
	if err != nil {
		t.Fatalf("VerifyAllWithArchives: %v\n%s", err, out.String())
	}
	return ok, out.String()
}

func (s *sinceLog) wantWithFiles(t *testing.T, ok bool, text string, names ...string) {
	t.Helper()
	got, out := s.withFiles(t, names...)
	if got != ok || !strings.Contains(out, text) {
		t.Fatalf("VerifyAllWithArchives(%v): ok %v, want %v and %q in:\n%s", names, got, ok, text, out)
	}
}

// TestVerifyAllWithArchives: with the archive files given, the full
// verification checks that they are exactly the archived ranges. Without
// them, a range recorded by someone with write access to the database,
// ending at a real checkpoint, with its records deleted and no file made,
// verified: nothing held the rows to the files.
func TestVerifyAllWithArchives(t *testing.T) {
	for _, d := range storetest.Dialects() {
		t.Run(d.Name, func(t *testing.T) {
			t.Run("Matched", func(t *testing.T) {
				s := newSinceLog(t, d)
				s.mustArchive(t, 25, "a.jsonl.gz")
				s.mustArchive(t, 45, "b.jsonl.gz")
				s.wantWithFiles(t, true, "audit archives OK: the 2 files given are the 2 archived ranges, records 1 to 40", "a.jsonl.gz", "b.jsonl.gz")
				s.wantWithFiles(t, true, "checked against the archive files given", "b.jsonl.gz", "a.jsonl.gz")
				s.wantWithFiles(t, false, "no file given holds the archived range 21-40 (b.jsonl.gz", "a.jsonl.gz")
				// A row pointing at another file than the one written.
				tamperArchives(t, s.cfg, "UPDATE audit_archives SET file_sha256 = "+blobLiteral(d.Name, bytes.Repeat([]byte{7}, 32))+" WHERE first_seq = 21")
				s.wantFull(t, true)
				s.wantWithFiles(t, false, "b.jsonl.gz (SHA-256 ", "a.jsonl.gz", "b.jsonl.gz")
			})
			t.Run("FileOfNoRange", func(t *testing.T) {
				s := newSinceLog(t, d)
				s.mustArchive(t, 25, "a.jsonl.gz")
				// Another log's file, with the same checkpoint key.
				other := newSinceLogKey(t, d, s.key)
				other.mustArchive(t, 25, "x.jsonl.gz")
				other.mustArchive(t, 45, "y.jsonl.gz")
				rel, err := filepath.Rel(s.dir, filepath.Join(other.dir, "y.jsonl.gz"))
				if err != nil {
					t.Fatal(err)
				}
				s.wantWithFiles(t, false, "holds records 21 to 40, which no archived range recorded in the database starts with", "a.jsonl.gz", rel)
				rel, _ = filepath.Rel(s.dir, filepath.Join(other.dir, "x.jsonl.gz"))
				s.wantWithFiles(t, false, "is not the file the archived range 1-20 records (a.jsonl.gz", rel)
			})
			t.Run("ForgedRangeWithRealCheckpoint", func(t *testing.T) {
				s := newSinceLog(t, d)
				s.mustArchive(t, 25, "a.jsonl.gz")
				// Records 21-40 vanish under a range ending at the real
				// checkpoint at 40, without any file.
				cp := strings.TrimSuffix(strings.SplitAfter(mustReadFile(t, s.cps), "\n")[1], "\n")
				execAsAttacker(t, s.cfg,
					`INSERT INTO audit_archives (first_seq, last_seq, last_hash, file_name, file_sha256, created_unix_ns, state, checkpoint_line)
VALUES (21, 40, `+blobLiteral(d.Name, s.recs[39].Hash)+`, 'forged.jsonl.gz', `+blobLiteral(d.Name, bytes.Repeat([]byte{1}, 32))+`, 1, 'deleting', '`+cp+`')`,
					"DELETE FROM audit_log WHERE seq <= 40",
					"UPDATE audit_archives SET state = 'done' WHERE first_seq = 21")
				s.wantFull(t, true) // what the database and the checkpoints alone say
				s.wantWithFiles(t, false, "no file given holds the archived range 21-40 (forged.jsonl.gz", "a.jsonl.gz")
			})
			t.Run("StillDeleting", func(t *testing.T) {
				s := newSinceLog(t, d)
				_, err := s.archive(t, 45, "a.jsonl.gz", func(o *audit.ArchiveOptions) {
					o.BatchSize = 10
					*o = audit.WithArchiveHooks(*o, nil, func(int64) error { return errCrash })
				})
				if !errors.Is(err, errCrash) {
					t.Fatalf("Archive killed mid-delete: %v", err)
				}
				s.wantWithFiles(t, true, "audit archives OK: the 1 files given", "a.jsonl.gz")
			})
		})
	}
}
