package notify

import (
	"context"
	"errors"
	"time"

	"github.com/thiqa/thiqa/identity/activity"
)

// Store is what the notifier reads and keeps (package store implements
// it over the audit log, the certificates and its own tables).
type Store interface {
	// AuditAfter returns the audit records whose seq is above after, in
	// seq order, at most limit, each with its Hash (part of the
	// notification's id).
	AuditAfter(ctx context.Context, after int64, limit int) ([]activity.Record, error)
	// AuditHeadSeq returns the seq of the newest audit record (0: none).
	AuditHeadSeq(ctx context.Context) (int64, error)
	// Owners returns the holder of each of objects that is a citizen's
	// certificate serial or credential ID (the others are absent from
	// the map).
	Owners(ctx context.Context, objects []string) (map[string]Owner, error)
	// ClientNames returns the registered names of the OpenID Connect
	// clients among ids.
	ClientNames(ctx context.Context, ids []string) (map[string]string, error)

	// ClaimLease makes holder the one deliverer for lease from now,
	// unless another holder's lease is live, and returns the cursor: the
	// seq of the last audit record dealt with. "Now" and "live" are by
	// the database's clock, never by the caller's: nodes whose clocks
	// differ still agree on who holds the lease and when it lapses. The
	// first claim ever starts the cursor at the head of the audit log
	// (what happened before notifications were turned on is not told).
	ClaimLease(ctx context.Context, holder string, lease time.Duration) (claimed bool, cursor int64, err error)
	// ReleaseLease ends holder's lease (releasing a lease not held
	// changes nothing).
	ReleaseLease(ctx context.Context, holder string) error
	// Advance moves the cursor to seq while holder holds the lease (else
	// ErrLeaseLost); it never moves it back.
	Advance(ctx context.Context, holder string, seq int64) error

	// Expiring returns valid (issued, unrevoked, unexpired at now, not
	// renewed) certificates of citizens expiring before deadline, with no
	// reminder recorded for window yet, after after (by NotAfter, in whole
	// seconds, then Serial; the zero Expiring: from the first), soonest
	// first, at most limit.
	Expiring(ctx context.Context, now, deadline time.Time, window string, after Expiring, limit int) ([]Expiring, error)
	// Reminded records that the holder of serial was reminded for each
	// of windows.
	Reminded(ctx context.Context, serial string, windows []string, at time.Time) error
}

// Expiring is a citizen's certificate about to expire.
type Expiring struct {
	Serial      string
	CivilNumber string
	NotAfter    time.Time
}

// ErrLeaseLost is an Advance by a node whose lease expired and was taken
// over: what it delivered meanwhile may be delivered again by the other
// (at-least-once).
var ErrLeaseLost = errors.New("notify: the delivery lease was taken over by another node")
