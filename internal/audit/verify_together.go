package audit

import (
	"context"
	"sync"
)

// teeBuffer is how many records the chain walk may be ahead of the
// checkpoint check.
const teeBuffer = 256

// verifyTogether runs the chain walk on st from ls (verifyFrom) and the checkpoint check alongside it (check, given the
// records the walk reads), the checkpoints held against the records the
// walk reads: the chain is read once instead of twice (from the first
// checkpoint on, which is near the start of the log). Memory stays
// bounded: the checkpoint check is at most teeBuffer records behind. It
// answers both reports and the error of each.
func verifyTogether(ctx context.Context, st Store, ls liveStart, check func(context.Context, ChainReader) (CheckpointReport, error)) (Report, CheckpointReport, error, error) {
	t := &tee{Store: st, recs: make(chan Record, teeBuffer), done: make(chan struct{})}
	var crep CheckpointReport
	var cerr error
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		defer close(t.done)
		crep, cerr = check(ctx, teeReader{t})
	}()
	rep, err := verifyFrom(ctx, t, ls)
	close(t.recs)
	wg.Wait()
	return rep, crep, err, cerr
}

// tee is the Store Verify walks: every record it reads is also handed to
// the checkpoint check (until that check is done).
type tee struct {
	Store
	recs chan Record
	done chan struct{}
}

// AuditRecords walks st, handing each record to fn and then to the
// checkpoint check.
func (t *tee) AuditRecords(ctx context.Context, fromSeq int64, fn func(Record) error) error {
	return t.Store.AuditRecords(ctx, fromSeq, func(r Record) error {
		if err := fn(r); err != nil {
			return err
		}
		select {
		case t.recs <- r:
		case <-t.done:
		}
		return nil
	})
}

// teeReader is the ChainReader the checkpoint check reads: the records
// Verify's walk reads, from fromSeq on, and the store's head.
type teeReader struct{ t *tee }

// AuditRecords calls fn for the walk's records from fromSeq on, until the
// walk ends or fn returns an error.
func (r teeReader) AuditRecords(ctx context.Context, fromSeq int64, fn func(Record) error) error {
	for rec := range r.t.recs {
		if rec.Seq < fromSeq {
			continue
		}
		if err := fn(rec); err != nil {
			return err
		}
	}
	return ctx.Err()
}

// AuditHead reads the store's head.
func (r teeReader) AuditHead(ctx context.Context) (Head, error) { return r.t.Store.AuditHead(ctx) }
