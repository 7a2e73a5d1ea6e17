package store

import "context"

// IssueBatch commits the given certificate updates (the arguments of
// issueCertificateSQL, in order) as one batch, for tests; it reports
// whether the statements are prepared (SQLite) and each update's outcome.
func (c *Certificates) IssueBatch(ctx context.Context, updates [][]any) (bool, []int64, []error) {
	ok, err := c.w.prepared(ctx)
	if err != nil || !ok {
		return ok, nil, []error{err}
	}
	batch := make([]*issueUpdate, len(updates))
	for i, a := range updates {
		batch[i] = &issueUpdate{args: a, done: make(chan struct{})}
	}
	c.w.commitIssued(ctx, batch)
	ns, errs := make([]int64, len(batch)), make([]error, len(batch))
	for i, u := range batch {
		<-u.done
		ns[i], errs[i] = u.n, u.err
	}
	return true, ns, errs
}
