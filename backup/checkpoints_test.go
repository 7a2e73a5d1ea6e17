package backup

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"path/filepath"
	"testing"
	"time"

	"github.com/thiqa/thiqa/internal/audit"
)

// pointChain is a chain of n records that reads one record's hash by seq
// and counts the records walks read.
type pointChain struct {
	recs []audit.Record
	read int
}

func newPointChain(n int) *pointChain {
	c := &pointChain{}
	prev := audit.GenesisHash()
	for i := range n {
		r := audit.Record{Seq: int64(i + 1), Time: time.Unix(1_700_000_000, 0).UTC(), Actor: "a", Action: "b",
			Outcome: audit.OutcomeSuccess, Details: []byte("{}"), PrevHash: prev}
		r.Hash = audit.HashRecord(r)
		prev = r.Hash
		c.recs = append(c.recs, r)
	}
	return c
}

func (c *pointChain) AuditHead(context.Context) (audit.Head, error) {
	last := c.recs[len(c.recs)-1]
	return audit.Head{Seq: last.Seq, Hash: last.Hash}, nil
}

func (c *pointChain) AuditRecords(_ context.Context, from int64, fn func(audit.Record) error) error {
	for _, r := range c.recs[from-1:] {
		c.read++
		if err := fn(r); err != nil {
			return err
		}
	}
	return nil
}

func (c *pointChain) AuditRecordHash(_ context.Context, seq int64) ([]byte, error) {
	if seq < 1 || seq > int64(len(c.recs)) {
		return nil, nil
	}
	return c.recs[seq-1].Hash, nil
}

// TestRestoreCheckpointsDoNotWalkTheChain checks that a restore, after
// checking the chain, keeps the checkpoints naming its records and checks
// the rewritten file by looking each one up, not by walking the chain
// again from the first checkpoint (near the start of a log of millions).
func TestRestoreCheckpointsDoNotWalkTheChain(t *testing.T) {
	const n = 5000
	ctx := context.Background()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	c := newPointChain(n)
	var src []byte
	for _, seq := range []int64{3, n / 2, n - 1} {
		r := c.recs[seq-1]
		cp, err := audit.SignCheckpoint(key, audit.Head{Seq: r.Seq, Hash: r.Hash}, time.Unix(1_700_000_000+seq, 0))
		if err != nil {
			t.Fatal(err)
		}
		line, err := cp.MarshalLine()
		if err != nil {
			t.Fatal(err)
		}
		src = append(src, line...)
	}
	s, err := restoreCheckpoints(ctx, c, src, filepath.Join(t.TempDir(), "audit", "checkpoints.jsonl"), key, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if s.kept != 3 || s.archived != 0 {
		t.Fatalf("kept %d, archived %d; want 3, 0", s.kept, s.archived)
	}
	if c.read > 10 {
		t.Fatalf("the restore's checkpoint step read %d records of a chain of %d", c.read, n)
	}
}
