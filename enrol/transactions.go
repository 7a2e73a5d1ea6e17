package enrol

import (
	"context"
	"errors"
	"time"
)

// Transaction is the certificate a CMP transaction (package enrol/cmp) issued, waiting for
// the client's certConf.
type Transaction struct {
	ID       string // hex of the transactionID
	Sender   string // "ref:<reference>" or "cert:<serial>"
	Serial   string
	CertHash [32]byte
	Created  time.Time
	// State is "waiting", "confirmed", "rejected" or "implicit".
	State  string
	Closed time.Time
}

// Errors of a TransactionStore.
var (
	ErrTransactionInUse = errors.New("transaction ID in use")
	ErrNoTransaction    = errors.New("no such transaction waiting")
)

// TransactionStore keeps the transactions (package store).
type TransactionStore interface {
	InsertTransaction(ctx context.Context, tx Transaction) error
	GetTransaction(ctx context.Context, id string) (*Transaction, error)
	CloseTransaction(ctx context.Context, id, state string, now time.Time) error
}
