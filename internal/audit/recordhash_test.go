package audit_test

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/thiqa/thiqa/internal/audit"
)

// pointChain is a ChainReader that also reads one record's hash; its walk
// fails, so that a caller that walks is caught.
type pointChain struct{ lookups int }

func (c *pointChain) AuditRecords(context.Context, int64, func(audit.Record) error) error {
	return errors.New("walked the chain for one record")
}

func (c *pointChain) AuditHead(context.Context) (audit.Head, error) { return audit.Head{}, nil }

func (c *pointChain) AuditRecordHash(_ context.Context, seq int64) ([]byte, error) {
	c.lookups++
	if seq == 7 {
		return bytes.Repeat([]byte{7}, audit.HashSize), nil
	}
	return nil, nil
}

// TestRecordHashReadsOneRecord checks that RecordHash (the checkpoint
// writer's and a restore's look-up) reads the one record when the store
// offers it, instead of a page of records from seq on.
func TestRecordHashReadsOneRecord(t *testing.T) {
	c := &pointChain{}
	h, err := audit.RecordHash(context.Background(), c, 7)
	if err != nil || !bytes.Equal(h, bytes.Repeat([]byte{7}, audit.HashSize)) {
		t.Fatalf("audit.RecordHash(7) = %x, %v", h, err)
	}
	if h, err := audit.RecordHash(context.Background(), c, 8); err != nil || h != nil {
		t.Fatalf("audit.RecordHash(8) = %x, %v; want nil, nil", h, err)
	}
	if c.lookups != 2 {
		t.Fatalf("%d point look-ups, want 2", c.lookups)
	}
}

// TestRecordHashWalksWithoutPointReads checks the fallback for a chain
// without point reads (FileStore).
func TestRecordHashWalksWithoutPointReads(t *testing.T) {
	st := audit.NewFileStore(filepath.Join(t.TempDir(), "chain.log"))
	l := audit.New(st, nil, nil, audit.Options{})
	var want []byte
	for i := range 3 {
		r, err := l.Append(context.Background(), audit.Entry{Actor: "a", Action: "b", Outcome: audit.OutcomeSuccess})
		if err != nil {
			t.Fatal(err)
		}
		if i == 1 {
			want = r.Hash
		}
	}
	l.Close()
	h, err := audit.RecordHash(context.Background(), st, 2)
	if err != nil || !bytes.Equal(h, want) {
		t.Fatalf("audit.RecordHash(2) = %x, %v; want %x", h, err, want)
	}
	if h, err := audit.RecordHash(context.Background(), st, 9); err != nil || h != nil {
		t.Fatalf("audit.RecordHash(9) = %x, %v; want nil", h, err)
	}
}

// lookupChain is a fakeChain that reads one record's hash by seq and
// refuses to be walked.
type lookupChain struct{ *fakeChain }

func (c lookupChain) AuditRecords(context.Context, int64, func(audit.Record) error) error {
	return errors.New("walked the chain")
}

func (c lookupChain) AuditRecordHash(_ context.Context, seq int64) ([]byte, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if seq < 1 || seq > int64(len(c.recs)) {
		return nil, nil
	}
	return c.recs[seq-1].Hash, nil
}

// TestVerifyCheckpointsByLookup checks the restore's checkpoint check:
// without walking the chain it accepts good checkpoints and catches a
// rewritten chain, a removed tail and a head behind the last checkpoint.
func TestVerifyCheckpointsByLookup(t *testing.T) {
	ctx := context.Background()
	f := &fakeChain{}
	f.grow(3)
	key := newKey(t)
	path := checkpointFile(t)
	w := newWriter(t, f, key, path, func() time.Time { return time.Now().Add(-time.Hour) })
	mustCheckpoint(t, w, true)
	f.grow(10)
	mustCheckpoint(t, w, true)
	verify := func() audit.CheckpointReport {
		t.Helper()
		raw, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		rep, err := audit.VerifyCheckpointsByLookup(ctx, lookupChain{f}, bytes.NewReader(raw), key.Public())
		if err != nil {
			t.Fatal(err)
		}
		return rep
	}
	if rep := verify(); !rep.OK() || rep.Verified != 2 || rep.Last.Seq != 13 {
		t.Fatalf("good file: %+v", rep)
	}
	f.rewriteFrom(5)
	wantProblem(t, verify(), 2, audit.CheckpointHashMismatch, "rewritten")

	f.mu.Lock()
	f.recs = f.recs[:12]
	f.head = audit.Head{Seq: 12, Hash: f.recs[11].Hash}
	f.mu.Unlock()
	wantProblem(t, verify(), 2, audit.CheckpointRecordMissing, "removed")
}
