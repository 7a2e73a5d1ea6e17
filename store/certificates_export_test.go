package store

import (
	"context"
	"errors"
	"fmt"

	"github.com/thiqa/thiqa/internal/audit"
)

// IntentBatch commits the given intent inserts (the arguments of
// insertIntentSQL, in order) as one batch, for tests.
func (c *Certificates) IntentBatch(ctx context.Context, inserts [][]any) ([]error, error) {
	if _, err := c.w.prepared(ctx); err != nil {
		return nil, err
	}
	batch := make([]*writeOp, len(inserts))
	for i, a := range inserts {
		batch[i] = &writeOp{st: c.w.insertIntent, args: a, done: make(chan struct{})}
	}
	c.w.commit(ctx, batch)
	errs := make([]error, len(batch))
	for i, u := range batch {
		errs[i] = u.err
	}
	return errs, nil
}

// IssueBatch commits the given certificate updates (the arguments of
// issueCertificateSQL, in order) as one batch, for tests; it reports
// whether the statements are prepared (SQLite) and each update's outcome.
func (c *Certificates) IssueBatch(ctx context.Context, updates [][]any) (bool, []int64, []error) {
	ok, err := c.w.prepared(ctx)
	if err != nil || !ok {
		return ok, nil, []error{err}
	}
	batch := make([]*writeOp, len(updates))
	for i, a := range updates {
		batch[i] = &writeOp{st: c.w.issue, args: a, done: make(chan struct{})}
	}
	c.w.commit(ctx, batch)
	ns, errs := make([]int64, len(batch)), make([]error, len(batch))
	for i, u := range batch {
		<-u.done
		ns[i], errs[i] = u.n, u.err
	}
	return true, ns, errs
}

// WriteBroken queues a statement the driver cannot run at all (a nil
// statement panics inside database/sql), for tests of the writer's
// recovery.
func (c *Certificates) WriteBroken(ctx context.Context) error {
	if _, err := c.w.prepared(ctx); err != nil {
		return err
	}
	_, err := c.w.write(ctx, nil, nil, nil)
	return err
}

// IssueBatchAudited commits the given certificate updates (the arguments of
// issueCertificateSQL) with their audit records as one batch, as the
// writer does for concurrent issuances, for tests; it returns each
// update's outcome.
func (c *Certificates) IssueBatchAudited(ctx context.Context, updates [][]any, seals []audit.Sealer) ([]int64, []error) {
	ok, err := c.w.prepared(ctx)
	if err != nil {
		return nil, []error{err}
	}
	batch := make([]*writeOp, len(updates))
	for i, a := range updates {
		batch[i] = &writeOp{st: c.w.issue, args: a, seal: seals[i], done: make(chan struct{})}
		if !ok {
			batch[i] = &writeOp{q: issueCertificateSQL, args: a, seal: seals[i], done: make(chan struct{}),
				look: storedLookSQL, lookArgs: []any{a[8], a[0]}}
		}
	}
	c.w.commit(ctx, batch)
	ns, errs := make([]int64, len(batch)), make([]error, len(batch))
	for i, u := range batch {
		<-u.done
		ns[i], errs[i] = u.n, u.err
	}
	return ns, errs
}

// SettleAfterBatch runs settle for one PostgreSQL-style statement q (args)
// whose records seal the failed batch had written (its n is 1), with look
// (lookArgs) finding whether it took effect; unsure makes the batch's
// error one whose outcome is unknown. For tests of the failure counts.
func (c *Certificates) SettleAfterBatch(ctx context.Context, unsure bool, q string, args []any, look string, lookArgs []any, seal audit.Sealer) (int64, error) {
	batchErr := errors.New("store: test batch failed")
	if unsure {
		batchErr = fmt.Errorf("%w: test batch", ErrOutcomeUnknown)
	}
	u := &writeOp{q: q, args: args, seal: seal, look: look, lookArgs: lookArgs, n: 1, done: make(chan struct{})}
	return c.w.settle(ctx, u, batchErr)
}
