package audit_test

import (
	"bytes"
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

// TestFoundArchiveFileOfAnotherLogRefused: someone with write access to
// the database but not the checkpoint key edits the rows of a range
// recorded lost (and of the range before it) to name the files of another
// log signed with the same key, with the same seqs: each file verifies
// against its signed checkpoint, but the chain to the next range's file
// and to the live log breaks, so the loss is not hidden. A guard for the
// found-file path (it passes as merged).
func TestFoundArchiveFileOfAnotherLogRefused(t *testing.T) {
	for _, d := range storetest.Dialects() {
		t.Run(d.Name, func(t *testing.T) {
			key := newKey(t)
			s, x := newSinceLogKey(t, d, key), newSinceLogKey(t, d, key)
			s.mustArchive(t, 25, "a.jsonl.gz")
			_, err := s.archive(t, 45, "b.jsonl.gz", func(o *audit.ArchiveOptions) {
				o.BatchSize = 10
				*o = audit.WithArchiveHooks(*o, nil, func(int64) error { return errCrash })
			})
			if !errors.Is(err, errCrash) {
				t.Fatalf("Archive killed mid-delete: %v", err)
			}
			if err := os.Remove(filepath.Join(s.dir, "b.jsonl.gz")); err != nil {
				t.Fatal(err)
			}
			if _, err := s.recoverLost(t, "r.jsonl.gz"); err != nil {
				t.Fatal(err)
			}
			s.mustArchive(t, 65, "c.jsonl.gz")
			xa, xb := x.mustArchive(t, 25, "xa.jsonl.gz").Row, x.mustArchive(t, 45, "xb.jsonl.gz").Row
			for _, name := range []string{"xa.jsonl.gz", "xb.jsonl.gz"} {
				raw, err := os.ReadFile(filepath.Join(x.dir, name))
				if err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(filepath.Join(s.dir, name), raw, 0o600); err != nil {
					t.Fatal(err)
				}
			}
			edit := func(r audit.ArchiveRow, file string, first int64) string {
				return "UPDATE audit_archives SET file_name = '" + file + "', file_sha256 = " + blobLiteral(d.Name, r.FileSHA256) +
					", last_hash = " + blobLiteral(d.Name, r.LastHash) + ", checkpoint_line = '" + strings.ReplaceAll(r.Checkpoint, "'", "''") +
					"' WHERE first_seq = " + strconv.FormatInt(first, 10)
			}
			// The checkpoint file holds the checkpoints the edited rows
			// end at, and catches the edit first; a file rotated since
			// (holding only the last) leaves it to the files' chain.
			cps, err := os.ReadFile(s.cps)
			if err != nil {
				t.Fatal(err)
			}
			lines := strings.SplitAfter(strings.TrimSpace(string(cps)), "\n")
			rotated := filepath.Join(t.TempDir(), "rotated.jsonl")
			if err := os.WriteFile(rotated, []byte(lines[len(lines)-1]+"\n"), 0o600); err != nil {
				t.Fatal(err)
			}
			check := func(names ...string) {
				t.Helper()
				for _, cp := range []string{s.cps, rotated} {
					paths := make([]string, len(names))
					for i, n := range names {
						paths[i] = filepath.Join(s.dir, n)
					}
					var out bytes.Buffer
					ok, err := audit.VerifyAllWithArchives(ctxT(t), s.db, cp, s.pub, paths, &out)
					if err != nil || ok || strings.Contains(out.String(), "found again") || !strings.Contains(out.String(), "BROKEN") {
						t.Fatalf("VerifyAllWithArchives(%v, checkpoints %s) with rows naming another log's files: ok %v, %v\n%s", names, cp, ok, err, out.String())
					}
				}
			}
			// Only the lost range's row, then that and the one before.
			tamperArchives(t, s.cfg, edit(xb, "b.jsonl.gz", 21))
			check("a.jsonl.gz", "xb.jsonl.gz", "c.jsonl.gz")
			check("a.jsonl.gz", "xb.jsonl.gz", "r.jsonl.gz", "c.jsonl.gz")
			if err := execErr(s.cfg, edit(xa, "a.jsonl.gz", 1)); err != nil { // the triggers are off already
				t.Fatal(err)
			}
			check("xa.jsonl.gz", "xb.jsonl.gz", "c.jsonl.gz")
		})
	}
}
