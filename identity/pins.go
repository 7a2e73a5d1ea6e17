package identity

import (
	"context"
	"errors"
	"fmt"

	"github.com/thiqa/thiqa/internal/audit"
	"github.com/thiqa/thiqa/internal/pin"
)

// ActionPINLocked records the wrong try that locked a login PIN: the same
// action as the signing service's (credential.pin.locked), since the PIN
// endpoints manage both.
const ActionPINLocked = "credential.pin.locked"

// PINManager checks a credential's PIN, counting the try, and commits the
// record of the lock with the try that locks it (a *pin.Manager).
type PINManager interface {
	CheckRecorded(ctx context.Context, subject, value string, lock audit.Sealer) error
	Params() pin.Params
}

// Preparer prepares audit records that a store commits with its change
// (*audit.Log).
type Preparer interface {
	Prepare(entries ...audit.Entry) (audit.Sealer, error)
}

// LoginPINs checks the login PINs of mobile IDs with a PIN manager
// (PINChecker): a locked PIN is ErrPINLocked, a wrong one or none set
// ErrWrongPIN, so that a login never tells the two apart; failures pass
// as they are. The wrong try that locks a PIN is recorded
// (credential.pin.locked) through Audit; when that record cannot be
// written the login fails (a failure, not a wrong PIN) and the PIN stays
// locked: see pin.Manager.CheckRecorded.
type LoginPINs struct {
	Manager PINManager
	Audit   Preparer
}

// CheckPIN implements PINChecker.
func (c LoginPINs) CheckPIN(ctx context.Context, credentialID, civilNumber, value string) error {
	var lock audit.Sealer
	if c.Audit != nil {
		var err error
		lock, err = c.Audit.Prepare(audit.Entry{Actor: "citizen:" + civilNumber, Action: ActionPINLocked, Object: credentialID,
			Outcome: audit.OutcomeSuccess, Details: map[string]any{"kind": "mobile-id", "owner": civilNumber, "maxFailures": c.Manager.Params().MaxFailures}})
		if err != nil {
			return fmt.Errorf("preparing the record of a PIN lock: %w", err)
		}
	}
	err := c.Manager.CheckRecorded(ctx, credentialID, value, lock)
	switch {
	case err == nil:
		return nil
	case errors.Is(err, pin.ErrLockUnrecorded):
		return err
	case errors.Is(err, pin.ErrLocked):
		return ErrPINLocked
	case errors.Is(err, pin.ErrWrong), errors.Is(err, pin.ErrNotSet):
		return ErrWrongPIN
	}
	return err
}
