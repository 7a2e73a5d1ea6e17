package revocation

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"time"
)

// ResponderRenewals records, for every `thiqa serve` node sharing one
// store, token and data folder, which responder certificate of an issuing
// CA replaced which: of the nodes that find a responder due at the same
// time, one claims its renewal and makes the new key and certificate, and
// the others adopt that responder instead of making their own. store
// implements it over the database.
type ResponderRenewals interface {
	// ClaimRenewal claims for holder, until until, the renewal of the
	// responder certificate of caName whose serial is previous (hex). The
	// claim is granted when nobody else holds a live one (a claim whose
	// until is not after now has lapsed: its holder died) and the renewal
	// is not done. Once it is done, every claim gets the responder that
	// replaced previous instead.
	ClaimRenewal(ctx context.Context, caName, previous, holder string, now, until time.Time) (ResponderClaim, error)
	// CompleteRenewal records next as the responder that replaced
	// previous; only the holder of the claim may.
	CompleteRenewal(ctx context.Context, caName, previous, holder string, next RenewedResponder) error
	// ReleaseRenewal drops holder's claim on previous (the renewal
	// failed), so that any node may try again at once.
	ReleaseRenewal(ctx context.Context, caName, previous, holder string) error
	// Recorded returns the recorded renewal of caName's responder that
	// made the certificate cert (DER), or nil when none did.
	Recorded(ctx context.Context, caName string, cert []byte) (*RenewedResponder, error)
}

// ResponderClaim is the answer to ResponderRenewals.ClaimRenewal.
type ResponderClaim struct {
	// Claimed says the caller is to renew the responder.
	Claimed bool
	// Next is the responder that replaced it when the renewal is done;
	// nil while it is not.
	Next *RenewedResponder
}

// RenewedResponder is a renewed responder as the nodes share it.
type RenewedResponder struct {
	// KeyLabel is the label of its key on the token.
	KeyLabel string
	// Cert is its certificate (DER).
	Cert []byte
}

// responderClaimTTL is how long a claim to renew a responder holds: longer
// than one renewal takes (a key, a certificate, two files), so that only a
// dead holder's claim lapses.
const responderClaimTTL = 5 * time.Minute

// responderClaimRetry is how often Ensure asks again while another node
// renews an expired responder.
const responderClaimRetry = time.Second

// maxResponderAdoptions bounds how many successive renewals Ensure follows
// (a node that was down through several).
const maxResponderAdoptions = 16

// newHolder names this node in its claims.
func newHolder() (string, error) {
	var b [8]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", fmt.Errorf("naming the OCSP responders' instance: %w", err)
	}
	return hex.EncodeToString(b[:]), nil
}
