package audit_test

import (
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/thiqa/thiqa/internal/audit"
	"github.com/thiqa/thiqa/store/storetest"
)

// TestFoundArchiveFileVerifies: the file of a range finished with
// --file-lost that turns up again makes the verification with the files
// pass, with no database write: it is the file the range's row still
// names (SHA-256, seqs, last hash, checkpoint), chaining from the range
// before, and it holds the records recorded lost. It is matched with or
// without the replacement file. Before, the lost records stayed a break
// whatever files were given, and the found file itself was held by "no
// archived range".
func TestFoundArchiveFileVerifies(t *testing.T) {
	for _, d := range storetest.Dialects() {
		t.Run(d.Name, func(t *testing.T) {
			for _, tc := range []struct {
				name  string
				batch int
			}{{"PartlyDeleted", 10}, {"AllDeleted", 1000}} {
				t.Run(tc.name, func(t *testing.T) {
					s := newSinceLog(t, d)
					s.mustArchive(t, 25, "a.jsonl.gz")
					_, err := s.archive(t, 45, "b.jsonl.gz", func(o *audit.ArchiveOptions) {
						o.BatchSize = tc.batch
						*o = audit.WithArchiveHooks(*o, nil, func(int64) error { return errCrash })
					})
					if !errors.Is(err, errCrash) {
						t.Fatalf("Archive killed mid-delete: %v", err)
					}
					// The file goes missing and is recorded lost.
					found := filepath.Join(s.dir, "b.jsonl.gz")
					away := filepath.Join(t.TempDir(), "b.jsonl.gz")
					if err := os.Rename(found, away); err != nil {
						t.Fatal(err)
					}
					res, err := s.recoverLost(t, "r.jsonl.gz")
					if err != nil || res.Row.ReplacedFrom <= 21 {
						t.Fatalf("RecoverLostArchive: %+v %v", res, err)
					}
					s.mustArchive(t, 65, "c.jsonl.gz")
					rest := []string{"a.jsonl.gz", "c.jsonl.gz"}
					if res.Row.ReplacementFile != "" {
						rest = append(rest, "r.jsonl.gz")
					}
					s.wantWithFiles(t, false, "their archive file b.jsonl.gz", rest...)
					// It turns up again: the files verify, with or without
					// the replacement, in any order.
					if err := os.Rename(away, found); err != nil {
						t.Fatal(err)
					}
					head, err := s.db.AuditHead(ctxT(t))
					if err != nil {
						t.Fatal(err)
					}
					for _, names := range [][]string{
						append([]string{"b.jsonl.gz"}, rest...),
						{"c.jsonl.gz", "b.jsonl.gz", "a.jsonl.gz"},
					} {
						_, out := s.withFiles(t, names...)
						s.wantWithFiles(t, true, "audit archives OK: the "+strconv.Itoa(len(names))+" files given are the 3 archived ranges, records 1 to 60", names...)
						if !strings.Contains(out, "b.jsonl.gz is the file of the archived range 21-40 recorded lost (thiqa audit archive --file-lost), found again") ||
							strings.Contains(out, "BROKEN") {
							t.Fatalf("VerifyAllWithArchives(%v) with the found file:\n%s", names, out)
						}
					}
					// Without the range before it, the found file still
					// verifies but the range before is missing.
					s.wantWithFiles(t, false, "no file given holds the archived range 1-20", "b.jsonl.gz", "c.jsonl.gz")
					if now, err := s.db.AuditHead(ctxT(t)); err != nil || now.Seq != head.Seq {
						t.Fatalf("the verification wrote to the database: head %d, was %d (%v)", now.Seq, head.Seq, err)
					}
					s.wantFull(t, true)
				})
			}
		})
	}
}
