package enrol

import (
	"context"
	"log/slog"
	"time"
)

// How long the records of finished enrolments and CMP transactions are
// kept before PurgeEvery deletes them. What a trust service must keep
// for good is elsewhere: the audit log holds every creation, use and
// refusal of an enrolment and every CMP confirmation, and the
// certificate carries the enrolment's reference in its request ID
// (enrolment:<reference>), which keeps the CA from issuing under a
// reference twice after its record is gone.
const (
	// TransactionRetention is how long a CMP transaction is kept after it
	// closed (confirmed, rejected, implicitly confirmed, or expired: no
	// certConf within ConfirmWaitTime, the certificate revoked). Until
	// then a request reusing the transaction ID is refused
	// (transactionIdInUse) and a repeated certConf is answered
	// certConfirmed (certRevoked for an expired one).
	TransactionRetention = 7 * 24 * time.Hour
	// EnrolmentRetention is how long an enrolment is kept after it was
	// used or expired: a request under its reference is refused as used
	// or expired (rather than unknown) meanwhile. It is longer than
	// TransactionRetention, so the enrolment whose secret protects a
	// certConf (a MAC under the reference) outlives the transaction it
	// confirms.
	EnrolmentRetention = 30 * 24 * time.Hour
	// PurgeBatch bounds the rows one DELETE removes, so that a purge
	// never holds its locks long; a backlog goes in successive batches.
	PurgeBatch = 1000
	// purgeRounds bounds the batches of one purge run; the next run goes
	// on.
	purgeRounds = 100
)

// Purger deletes finished enrolment state (package store implements it).
// Each call deletes at most limit rows, in one short transaction, and
// returns how many went.
type Purger interface {
	// PurgeEnrolments deletes enrolments that expired before cutoff, and
	// used ones used before cutoff. Open or claimed enrolments that have
	// not expired by cutoff are never deleted.
	PurgeEnrolments(ctx context.Context, cutoff time.Time, limit int) (int64, error)
	// PurgeTransactions deletes CMP transactions created and closed
	// before cutoff. One waiting for its certConf, expiring, or whose
	// certConf's follow-up is undone (rejecting, confirming), is never
	// deleted: the sweep of package enrol/cmp closes it first.
	PurgeTransactions(ctx context.Context, cutoff time.Time, limit int) (int64, error)
}

// Purge deletes, in batches of PurgeBatch rows, the enrolments and CMP
// transactions past their retention at now (EnrolmentRetention,
// TransactionRetention), and returns how many of each went. Several
// instances sharing one database may purge at once: a row goes once.
func Purge(ctx context.Context, p Purger, now time.Time) (enrolments, transactions int64, err error) {
	if transactions, err = drain(ctx, func(ctx context.Context) (int64, error) {
		return p.PurgeTransactions(ctx, now.Add(-TransactionRetention), PurgeBatch)
	}); err != nil {
		return 0, transactions, err
	}
	enrolments, err = drain(ctx, func(ctx context.Context) (int64, error) {
		return p.PurgeEnrolments(ctx, now.Add(-EnrolmentRetention), PurgeBatch)
	})
	return enrolments, transactions, err
}

// drain runs one batch after another until a batch is not full (or
// purgeRounds batches ran) and returns the rows deleted.
func drain(ctx context.Context, batch func(context.Context) (int64, error)) (int64, error) {
	var total int64
	for range purgeRounds {
		n, err := batch(ctx)
		total += n
		if err != nil || n < PurgeBatch {
			return total, err
		}
	}
	return total, nil
}

// PurgeEvery purges p (Purge) every interval until ctx ends: `thiqa
// serve` runs it in the background. What went is logged; a failure is
// logged as a warning and the next tick tries again.
func PurgeEvery(ctx context.Context, p Purger, every time.Duration, now func() time.Time, logger *slog.Logger) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			e, tx, err := Purge(ctx, p, now())
			if e > 0 || tx > 0 {
				logger.Info("purged finished enrolments and CMP transactions", "enrolments", e, "transactions", tx)
			}
			if err != nil && ctx.Err() == nil {
				logger.Warn("purging finished enrolments and CMP transactions", "err", err)
			}
		}
	}
}
