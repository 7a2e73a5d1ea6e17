package audit_test

import (
	"bytes"
	"context"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/thiqa/thiqa/internal/audit"
)

// TestCheckpointsWrittenDuringVerifyAreLeft: a checkpoint made after the
// verification began may name records the walk did not read; it is left
// for the next run, not reported as removed records.
func TestCheckpointsWrittenDuringVerifyAreLeft(t *testing.T) {
	key := newKey(t)
	chain := &fakeChain{}
	chain.grow(5)
	path := checkpointFile(t)
	w := newWriter(t, chain, key, path, clock())
	c1 := mustCheckpoint(t, w, true)
	chain.grow(3)
	c2 := mustCheckpoint(t, w, true)
	// What the verifier read: the chain as it was before records 6-8.
	before := &fakeChain{recs: chain.recs[:5], head: audit.Head{Seq: 5, Hash: chain.recs[4].Hash}}
	asOf := c1.Time.Add(c2.Time.Sub(c1.Time) / 2)
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	rep, err := audit.VerifyCheckpointsAsOf(context.Background(), before, f, &key.PublicKey, asOf)
	if err != nil || !rep.OK() || rep.Verified != 1 || rep.StoppedAt != 2 {
		t.Fatalf("checkpoint written during the walk: %s %+v, %v", rep, rep, err)
	}
	// Made before the verification began, it must hold.
	if _, err := f.Seek(0, 0); err != nil {
		t.Fatal(err)
	}
	rep, err = audit.VerifyCheckpointsAsOf(context.Background(), before, f, &key.PublicKey, c2.Time.Add(time.Second))
	if err != nil {
		t.Fatal(err)
	}
	wantProblem(t, rep, 2, audit.CheckpointRecordMissing, "records were removed")
}

// TestCheckpointWriterRefusesRewrittenPrefix: once the head has moved past
// the last checkpoint, the writer still checks the record that checkpoint
// names, so it never signs a new head over a rewritten or rolled-back chain.
func TestCheckpointWriterRefusesRewrittenPrefix(t *testing.T) {
	key := newKey(t)
	chain := &fakeChain{}
	chain.grow(12)
	w := newWriter(t, chain, key, checkpointFile(t), clock())
	mustCheckpoint(t, w, true)
	// Rewrite from 8 on with recomputed hashes, then let the chain grow.
	chain.rewriteFrom(8)
	chain.grow(3)
	if _, _, err := w.Checkpoint(context.Background()); err == nil || !strings.Contains(err.Error(), "record 12 is not the one the last checkpoint names") {
		t.Fatalf("writer over a rewritten chain: %v", err)
	}
	// Rolled back below the checkpoint, then grown past it again.
	chain.mu.Lock()
	chain.recs, chain.head = chain.recs[:10], audit.Head{Seq: 10, Hash: chain.recs[9].Hash}
	chain.mu.Unlock()
	chain.grow(5)
	if _, _, err := w.Checkpoint(context.Background()); err == nil || !strings.Contains(err.Error(), "record 12 is not the one") {
		t.Fatalf("writer after a rollback and new records: %v", err)
	}
}

// TestCheckpointWriterLockGivesUp: a lock held by someone else makes the
// checkpoint fail when its context ends, never wait for ever.
func TestCheckpointWriterLockGivesUp(t *testing.T) {
	key := newKey(t)
	chain := &fakeChain{}
	chain.grow(3)
	path := checkpointFile(t)
	w := newWriter(t, chain, key, path, clock())
	mustCheckpoint(t, w, true)
	holder, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer holder.Close()
	if err := syscall.Flock(int(holder.Fd()), syscall.LOCK_EX); err != nil {
		t.Fatal(err)
	}
	chain.grow(1)
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	start := time.Now()
	if _, _, err := w.Checkpoint(ctx); err == nil || !strings.Contains(err.Error(), "another process holds it") {
		t.Fatalf("checkpoint with the file locked elsewhere: %v", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("gave up after %s", d)
	}
	if err := syscall.Flock(int(holder.Fd()), syscall.LOCK_UN); err != nil {
		t.Fatal(err)
	}
	mustCheckpoint(t, w, true)
}

// TestCheckpointLineMustBeCanonical: a line that decodes to a valid
// checkpoint but is not byte for byte what MarshalLine writes is refused.
func TestCheckpointLineMustBeCanonical(t *testing.T) {
	key := newKey(t)
	chain := &fakeChain{}
	chain.grow(2)
	c, err := audit.SignCheckpoint(key, audit.Head{Seq: 2, Hash: chain.head.Hash}, time.Date(2026, 11, 22, 12, 0, 0, 5, time.UTC))
	if err != nil {
		t.Fatal(err)
	}
	line, err := c.MarshalLine()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := audit.ParseCheckpointLine(line); err != nil {
		t.Fatalf("canonical line refused: %v", err)
	}
	hexHash := `"hash":"` + strings.ToLower(string(bytes.ToLower([]byte(strings.Split(strings.Split(string(line), `"hash":"`)[1], `"`)[0]))))
	for name, bad := range map[string]string{
		"upper-case hex":  strings.Replace(string(line), hexHash, strings.ToUpper(hexHash[:8])+strings.ToUpper(hexHash[8:]), 1),
		"key case":        strings.Replace(string(line), `"seq":`, `"SEQ":`, 1),
		"duplicate key":   strings.Replace(string(line), `"seq":2`, `"seq":99,"seq":2`, 1),
		"space":           strings.Replace(string(line), `"seq":2`, `"seq": 2`, 1),
		"time offset":     strings.Replace(string(line), `T12:00:00.000000005Z`, `T13:00:00.000000005+01:00`, 1),
		"carriage return": strings.TrimSuffix(string(line), "\n") + "\r\n",
	} {
		if bad == string(line) {
			t.Fatalf("%s: the variant equals the canonical line", name)
		}
		if _, err := audit.ParseCheckpointLine([]byte(bad)); err == nil {
			t.Errorf("%s accepted: %s", name, bad)
		}
	}
}

// TestCheckpointVerifyRecomputesTheChain: the records read for the
// checkpoints must form a chain of their own, so a database answering the
// chain walk and the checkpoint walk differently is caught.
func TestCheckpointVerifyRecomputesTheChain(t *testing.T) {
	key := newKey(t)
	chain := &fakeChain{}
	chain.grow(5)
	path := checkpointFile(t)
	w := newWriter(t, chain, key, path, clock())
	mustCheckpoint(t, w, true)
	chain.grow(5)
	mustCheckpoint(t, w, true)
	chain.mu.Lock()
	chain.recs[6].Actor = "mallory" // hash not recomputed
	chain.mu.Unlock()
	wantProblem(t, verifyFile(t, chain, path, &key.PublicKey), 2, audit.CheckpointChainBroken, "record 7 does not match its hash")
}
