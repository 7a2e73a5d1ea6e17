package audit_test

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/thiqa/thiqa/internal/audit"
	"github.com/thiqa/thiqa/store"
	"github.com/thiqa/thiqa/store/storetest"
)

// TestArchiveBeforeClockStepBack: --before never archives a record made
// at or after the time given, even when record times do not follow their
// seqs. The bound was a binary search over the checkpoints' record times,
// which assumes they grow with the seqs: after the clock was stepped back
// it archived records made after the time asked for.
func TestArchiveBeforeClockStepBack(t *testing.T) {
	for _, d := range storetest.Dialects() {
		t.Run(d.Name, func(t *testing.T) {
			s := &sinceLog{cfg: d.NewConfig(t), key: newKey(t), dir: t.TempDir()}
			s.db = storetest.Open(t, s.cfg)
			s.cps, s.pub = filepath.Join(s.dir, "checkpoints.jsonl"), filepath.Join(s.dir, "key.pem")
			if err := audit.PublishCheckpointKey(s.pub, s.key.Public()); err != nil {
				t.Fatal(err)
			}
			t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
			var mu sync.Mutex
			now := t0
			l := audit.New(s.db, slog.New(slog.DiscardHandler), nil, audit.Options{Now: func() time.Time {
				mu.Lock()
				defer mu.Unlock()
				now = now.Add(time.Second)
				return now
			}})
			t.Cleanup(l.Close)
			w := newWriter(t, s.db, s.key, s.cps, clock())
			// Records 1-20 before t0+500s, 21-40 after it, then the clock
			// is stepped back: 41-60 and 61-80 before it again. A
			// checkpoint after each block.
			for _, start := range []time.Duration{0, 1000 * time.Second, 100 * time.Second, 200 * time.Second} {
				mu.Lock()
				now = t0.Add(start)
				mu.Unlock()
				s.recs = append(s.recs, appendN(t, l, 20, "tester")...)
				mustCheckpoint(t, w, true)
			}
			before := t0.Add(500 * time.Second)
			if !s.recs[20].Time.After(before) || !s.recs[79].Time.Before(before) {
				t.Fatalf("record times: 21 at %s, 80 at %s", s.recs[20].Time, s.recs[79].Time)
			}
			res := s.mustArchive(t, 0, "b.jsonl.gz", func(o *audit.ArchiveOptions) { o.Before = before })
			if res.Row.LastSeq != 20 {
				t.Fatalf("Archive before %s: archived records 1 to %d; record 21 was made at %s", before, res.Row.LastSeq, s.recs[20].Time)
			}
			s.wantFull(t, true)
		})
	}
}

// seqCountingStore counts the records with a seq above over that
// AuditRecords hands out.
type seqCountingStore struct {
	*store.DB
	over, n int64
}

// AuditRecords is the store's, counting.
func (c *seqCountingStore) AuditRecords(ctx context.Context, from int64, fn func(audit.Record) error) error {
	return c.DB.AuditRecords(ctx, from, func(r audit.Record) error {
		if r.Seq > c.over {
			c.n++
		}
		return fn(r)
	})
}

// TestArchiveBeforeReadsNoFurther: with --before far ahead, the records
// are read up to the last checkpoint that can end the archive, not to
// the head (all of a large log past it, for nothing), and not at all
// when no checkpoint can.
func TestArchiveBeforeReadsNoFurther(t *testing.T) {
	for _, d := range storetest.Dialects() {
		t.Run(d.Name, func(t *testing.T) {
			s := newSinceLog(t, d) // checkpoints at 20, 40, 60; records to 70
			far := time.Now().Add(24 * time.Hour)
			none := filepath.Join(s.dir, "none.jsonl")
			if err := os.WriteFile(none, nil, 0o600); err != nil {
				t.Fatal(err)
			}
			c := &seqCountingStore{DB: s.db}
			_, err := audit.Archive(ctxT(t), c, audit.ArchiveOptions{Before: far, Out: filepath.Join(s.dir, "x.jsonl.gz"),
				CheckpointFile: none, CheckpointKeyFile: s.pub})
			if !errors.Is(err, audit.ErrNoArchiveCheckpoint) || c.n != 0 {
				t.Fatalf("Archive with no checkpoint: %v, %d records read", err, c.n)
			}
			c.over = 60
			res, err := audit.Archive(ctxT(t), c, audit.ArchiveOptions{Before: far, Out: filepath.Join(s.dir, "a.jsonl.gz"),
				CheckpointFile: s.cps, CheckpointKeyFile: s.pub})
			if err != nil || res.Row.LastSeq != 60 {
				t.Fatalf("Archive before %s: %+v %v", far, res, err)
			}
			if c.n > 2 {
				t.Fatalf("Archive before %s read %d records past the last checkpoint (60)", far, c.n)
			}
		})
	}
}
