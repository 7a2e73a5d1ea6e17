package store

import (
	"context"

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
