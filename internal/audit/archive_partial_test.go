package audit_test

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/thiqa/thiqa/store/storetest"
)

// TestArchiveNeverWritesThroughAnotherName: the archive is written under a
// temporary name of its own. A fixed "<out>.partial" was opened with
// O_TRUNC: a second run with the same --out, starting while the first had
// linked its .partial to --out and not yet removed it, truncated and
// rewrote the inode of the first run's finished, verified file (whose
// records were being deleted), and a crash of the second run then left it
// cut short. Here "<out>.partial" is a name linked to another file.
func TestArchiveNeverWritesThroughAnotherName(t *testing.T) {
	for _, d := range storetest.Dialects() {
		t.Run(d.Name, func(t *testing.T) {
			s := newSinceLog(t, d)
			out := filepath.Join(s.dir, "a.jsonl.gz")
			other := filepath.Join(s.dir, "other-run.jsonl.gz")
			if err := os.WriteFile(other, []byte("another run's archive"), 0o600); err != nil {
				t.Fatal(err)
			}
			if err := os.Link(other, out+".partial"); err != nil {
				t.Fatal(err)
			}
			s.mustArchive(t, 45, "a.jsonl.gz")
			if b, err := os.ReadFile(other); err != nil || string(b) != "another run's archive" {
				t.Fatalf("the archive was written through a name linked to another file (%d bytes now, %v)", len(b), err)
			}
			if ok, out := s.verifyFiles(t, "a.jsonl.gz"); !ok {
				t.Fatalf("VerifyArchiveFiles: %s", out)
			}
			left, err := filepath.Glob(out + ".partial-*")
			if err != nil || len(left) != 0 {
				t.Fatalf("temporary files left: %v %v", left, err)
			}
			s.wantFull(t, true, "records 1 to 40 are archived")
		})
	}
}
