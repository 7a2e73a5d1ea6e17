package pdf

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/thiqa/thiqa/internal/testenv"
)

// TestCorpusOpens opens every PDF of the shared corpus and lists its
// signatures; no PDF may make the reader fail except where noted.
func TestCorpusOpens(t *testing.T) {
	root := testenv.SharedCorpus(t)
	var files []string
	filepath.Walk(root, func(p string, info os.FileInfo, err error) error { //nolint:errcheck
		if err == nil && strings.HasSuffix(p, ".pdf") {
			files = append(files, p)
		}
		return nil
	})
	if len(files) == 0 {
		t.Fatal("no PDFs in corpus")
	}
	for _, p := range files {
		fh, err := os.Open(p)
		if err != nil {
			t.Fatal(err)
		}
		st, _ := fh.Stat()
		f, err := Open(fh, st.Size())
		if err != nil {
			t.Errorf("%s: %v", filepath.Base(p), err)
			fh.Close()
			continue
		}
		sigs, err := f.Signatures(-1)
		if err != nil {
			t.Errorf("%s: signatures: %v", filepath.Base(p), err)
		}
		var desc []string
		for _, s := range sigs {
			desc = append(desc, s.Type()+":"+s.SubFilter())
		}
		t.Logf("%s: %s; %d sigs %v", strings.TrimPrefix(p, root), f, len(sigs), desc)
		fh.Close()
	}
}
