package enrol

import (
	"context"
	"errors"
	"time"

	"github.com/thiqa/thiqa/internal/audit"
)

// Transaction is the certificate a CMP transaction (package enrol/cmp) issued, waiting for
// the client's certConf.
type Transaction struct {
	ID       string // hex of the transactionID
	Sender   string // "ref:<reference>" or "cert:<serial>"
	Serial   string
	CertHash [32]byte
	Created  time.Time
	// State is "waiting", "confirmed", "rejected" or "implicit"; or, when
	// no certConf came within ConfirmWaitTime, "expiring" (a server is
	// revoking the certificate) and then "expired" (it is revoked); or
	// "unconfirmed": left waiting by a release that announced no
	// confirmWaitTime, closed at the upgrade with its certificate kept.
	// A certConf whose follow-up is still to do leaves it "rejecting"
	// (the rejected certificate is to be revoked, its key update
	// withdrawn) or "confirming" (the certificate a confirmed key update
	// replaced is to be superseded) until that is done ("rejected",
	// "confirmed"); the sweep retries a follow-up left undone. One that
	// fails for good (a refusal no retry can change: its certificate
	// unknown, a key update that cannot be withdrawn), or the revocation
	// of an unconfirmed certificate that does, ends "failed": an operator
	// revokes the certificate by hand.
	State string
	// Closed is when the transaction left "waiting" (for "expiring": when
	// a server claimed it, for "expired": when the revocation was done;
	// for "rejecting" and "confirming": when the certConf or the latest
	// retry claimed it, for "rejected" and "confirmed" after them: when
	// the follow-up was done, for "failed": when it was given up).
	Closed time.Time
}

// The confirmation window of CMP (RFC 9810 §5.1.1.2, RFC 9483 §4.1.1).
const (
	// ConfirmWaitTime is how long after sending a certificate without
	// implicit confirmation the CA waits for the client's certConf. The
	// response announces the deadline (generalInfo confirmWaitTime); a
	// certificate whose certConf did not come by then is revoked, as if the
	// client had rejected it, and a certConf arriving later is refused.
	// Clients confirm at once (openssl cmp sends certConf right after the
	// response); the window is as wide as a request's messageTime may be
	// off.
	ConfirmWaitTime = 10 * time.Minute
	// ExpiryLease is how long a server's claim on an unconfirmed
	// transaction ("expiring") holds: a claim older than that, left by a
	// server that stopped before it revoked the certificate, is taken over
	// by the next sweep. A certConf's follow-up left undone ("rejecting",
	// "confirming") is retried once its claim is that old.
	ExpiryLease = 5 * time.Minute
)

// Errors of a TransactionStore.
var (
	ErrTransactionInUse = errors.New("transaction ID in use")
	ErrNoTransaction    = errors.New("no such transaction waiting")
)

// TransactionStore keeps the transactions (package store).
type TransactionStore interface {
	InsertTransaction(ctx context.Context, tx Transaction) error
	GetTransaction(ctx context.Context, id string) (*Transaction, error)
	// CloseTransaction moves a waiting transaction to state ("confirmed",
	// "rejected", or "expiring" to claim it for revocation); an error
	// wrapping ErrNoTransaction when it is not waiting.
	CloseTransaction(ctx context.Context, id, state string, now time.Time) error
	// ClaimUnconfirmed moves to "expiring" at now, and returns, at most
	// limit transactions that wait for a certConf since before cutoff, or
	// that were claimed before stale and never finished. Servers sharing
	// the database may claim at once: a transaction goes to one of them.
	ClaimUnconfirmed(ctx context.Context, cutoff, stale, now time.Time, limit int) ([]Transaction, error)
	// FinishExpired moves an expiring transaction to "expired" at now; an
	// error wrapping ErrNoTransaction when it is not expiring.
	FinishExpired(ctx context.Context, id string, now time.Time) error
	// ClaimFollowUps claims (Closed set to now), and returns, at most
	// limit transactions whose certConf's follow-up is undone ("rejecting"
	// or "confirming") and was claimed before stale: by the certConf, or
	// by a retry that failed or whose server stopped. Servers sharing the
	// database may claim at once: a transaction goes to one of them.
	ClaimFollowUps(ctx context.Context, stale, now time.Time, limit int) ([]Transaction, error)
	// FinishFollowUp records the follow-up of a certConf as done at now:
	// "rejecting" becomes "rejected", "confirming" "confirmed"; an error
	// wrapping ErrNoTransaction when it is in neither state.
	FinishFollowUp(ctx context.Context, id string, now time.Time) error
	// FailFollowUp records the follow-up of a certConf ("rejecting",
	// "confirming"), or the revocation of an unconfirmed certificate
	// ("expiring"), as failed for good at now: it becomes "failed", which
	// no sweep claims, with the audit records of seal (nil: none) in the
	// same transaction, so that a failure to record either leaves neither
	// (the sweep gives it up again later, once); an error wrapping
	// ErrNoTransaction, and no record, when it is in none of these states.
	FailFollowUp(ctx context.Context, id string, now time.Time, seal audit.Sealer) error
}
