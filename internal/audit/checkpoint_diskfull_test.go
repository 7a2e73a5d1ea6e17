package audit_test

import (
	"bytes"
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"testing"

	"github.com/thiqa/thiqa/internal/audit"
	"github.com/thiqa/thiqa/internal/testenv"
)

// TestCheckpointWriterOnFullDisk: a full disk takes only part of a
// checkpoint line (the rest of the file's last page); the writer cuts it
// off at once, so the file never ends torn, and writes the next
// checkpoint once space is back, without warning of a crash.
func TestCheckpointWriterOnFullDisk(t *testing.T) {
	disk := testenv.NewSmallDisk(t, 1<<20)
	key := newKey(t)
	chain := &fakeChain{}
	path := filepath.Join(disk.Dir, "audit", "checkpoints.jsonl")
	var logs bytes.Buffer
	w, err := audit.NewCheckpointWriter(chain, key, path, audit.CheckpointWriterOptions{Now: clock(), Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	if err != nil {
		t.Fatal(err)
	}
	// Checkpoint until the next line no longer fits in the file's last
	// page: on a full tmpfs that write is cut short.
	size := func() int64 {
		st, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		return st.Size()
	}
	n := 0
	for ; n < 100; n++ {
		chain.grow(1)
		mustCheckpoint(t, w, true)
		line := size() / int64(n+1)
		if room := 4096 - size()%4096; room < line-8 && room > 8 {
			break
		}
	}
	before := size()

	disk.Fill(t)
	chain.grow(1)
	if _, _, err := w.Checkpoint(context.Background()); err == nil {
		t.Fatal("a checkpoint was written on a full disk")
	}
	if got := size(); got != before {
		t.Errorf("the failed checkpoint left %d bytes of a torn line", got-before)
	}
	if rep := verifyFile(t, chain, path, &key.PublicKey); !rep.OK() || rep.IncompleteLastLine {
		t.Errorf("the file after the failure: %s", rep)
	}

	disk.Free(t)
	chain.grow(1)
	mustCheckpoint(t, w, true)
	if rep := verifyFile(t, chain, path, &key.PublicKey); !rep.OK() || rep.Verified != n+2 {
		t.Errorf("after space is back: %s", rep)
	}
	if bytes.Contains(logs.Bytes(), []byte("incomplete")) {
		t.Errorf("the writer found a torn line to cut: %s", logs.String())
	}
}
