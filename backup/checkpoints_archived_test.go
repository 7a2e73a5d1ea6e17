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

// archivedChain is a pointChain whose records up to archived were moved
// to an archive file (thiqa audit archive): they are gone from the chain,
// and one archived range records the last one's hash.
type archivedChain struct {
	*pointChain
	archived int64
}

func (c *archivedChain) AuditRecords(ctx context.Context, from int64, fn func(audit.Record) error) error {
	return c.pointChain.AuditRecords(ctx, max(from, c.archived+1), fn)
}

func (c *archivedChain) AuditRecordHash(ctx context.Context, seq int64) ([]byte, error) {
	if seq <= c.archived {
		return nil, nil
	}
	return c.pointChain.AuditRecordHash(ctx, seq)
}

func (c *archivedChain) AuditArchives(context.Context) ([]audit.ArchiveRow, error) {
	last := c.recs[c.archived-1]
	return []audit.ArchiveRow{{FirstSeq: 1, LastSeq: last.Seq, LastHash: last.Hash, File: "a.jsonl.gz",
		FileSHA256: make([]byte, 32), State: audit.ArchiveDone}}, nil
}

// TestRestoreKeepsCheckpointsOfArchivedRecords: a backup of a deployment
// whose oldest records were archived restores with its checkpoints at
// archived records kept (the archived range vouches for them), not moved
// aside as records the restored chain lacks.
func TestRestoreKeepsCheckpointsOfArchivedRecords(t *testing.T) {
	const n = 300
	ctx := context.Background()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	c := &archivedChain{pointChain: newPointChain(n), archived: 100}
	var src []byte
	for _, seq := range []int64{50, 100, 200, 299} {
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
	if s.kept != 4 || s.archived != 0 {
		t.Fatalf("kept %d, archived %d; want 4, 0", s.kept, s.archived)
	}
	// A checkpoint at the range's end that names another hash than the
	// range records is not kept.
	c.recs[99].Hash = make([]byte, 32)
	if _, _, s, err = splitCheckpoints(ctx, c, src, key.Public()); err != nil || s.kept != 1 || s.archived != 3 {
		t.Fatalf("with the archive row's hash changed: kept %d, archived %d (%v); want 1, 3", s.kept, s.archived, err)
	}
}
