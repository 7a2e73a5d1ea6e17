package identity

import (
	"context"
	"errors"

	"github.com/thiqa/thiqa/internal/pin"
)

// PINManager checks a credential's PIN, counting the try (a *pin.Manager).
type PINManager interface {
	Check(ctx context.Context, subject, value string) error
}

// LoginPINs checks the login PINs of mobile IDs with a PIN manager
// (PINChecker): a locked PIN is ErrPINLocked, a wrong one or none set
// ErrWrongPIN, so that a login never tells the two apart; failures pass
// as they are.
type LoginPINs struct{ Manager PINManager }

// CheckPIN implements PINChecker.
func (c LoginPINs) CheckPIN(ctx context.Context, credentialID, value string) error {
	err := c.Manager.Check(ctx, credentialID, value)
	switch {
	case err == nil:
		return nil
	case errors.Is(err, pin.ErrLocked):
		return ErrPINLocked
	case errors.Is(err, pin.ErrWrong), errors.Is(err, pin.ErrNotSet):
		return ErrWrongPIN
	}
	return err
}
