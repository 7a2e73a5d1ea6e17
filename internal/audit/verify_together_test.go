package audit_test

import (
	"bytes"
	"context"
	"errors"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/thiqa/thiqa/internal/audit"
)

// countingChain is a Store over a fakeChain that counts the records its
// walks hand out.
type countingChain struct {
	*fakeChain
	read atomic.Int64
}

func (c *countingChain) AuditRecords(ctx context.Context, from int64, fn func(audit.Record) error) error {
	return c.fakeChain.AuditRecords(ctx, from, func(r audit.Record) error {
		c.read.Add(1)
		return fn(r)
	})
}

func (c *countingChain) AppendAuditRecords(context.Context, func(audit.Head) ([]audit.Record, error)) error {
	return errors.New("read-only")
}

// TestVerifyAllReadsTheChainOnce checks that `thiqa audit verify` reads
// each record once, the checkpoints checked alongside the chain walk (the
// first checkpoint, written by thiqa init, is near the start of the log:
// a second walk from it doubled the time on a log of millions), and that
// the checkpoints still catch a chain rewritten after one of them.
func TestVerifyAllReadsTheChainOnce(t *testing.T) {
	const n = 5000
	ctx := context.Background()
	dir := t.TempDir()
	c := &countingChain{fakeChain: &fakeChain{}}
	c.grow(2)
	key := newKey(t)
	cps, pubFile := filepath.Join(dir, "checkpoints.jsonl"), filepath.Join(dir, "key.pem")
	if err := audit.PublishCheckpointKey(pubFile, key.Public()); err != nil {
		t.Fatal(err)
	}
	w := newWriter(t, c, key, cps, func() time.Time { return time.Now().Add(-time.Hour) })
	mustCheckpoint(t, w, true)
	c.grow(n / 2)
	mustCheckpoint(t, w, true)
	c.grow(n - 2 - n/2)
	mustCheckpoint(t, w, true)

	c.read.Store(0)
	var out bytes.Buffer
	ok, err := audit.VerifyAll(ctx, c, cps, pubFile, &out)
	if err != nil || !ok || !strings.Contains(out.String(), "audit checkpoints OK: 3 verified") {
		t.Fatalf("VerifyAll: %v %v\n%s", ok, err, out.String())
	}
	if got := c.read.Load(); got > n {
		t.Fatalf("VerifyAll read %d records of a chain of %d (want each once)", got, n)
	}

	// Rewritten from the middle with fresh hashes: the chain alone is
	// consistent again, the checkpoints are not.
	c.rewriteFrom(n / 2)
	out.Reset()
	ok, err = audit.VerifyAll(ctx, c, cps, pubFile, &out)
	if err != nil || ok || !strings.Contains(out.String(), "audit chain BROKEN: checkpoint 2") || !strings.Contains(out.String(), "rewritten") {
		t.Fatalf("VerifyAll after a rewrite: %v %v\n%s", ok, err, out.String())
	}
}
