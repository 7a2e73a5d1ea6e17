package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/thiqa/thiqa/internal/audit"
	"github.com/thiqa/thiqa/internal/pin"
)

// The life cycle of PINs (pin.LifecycleStore) over pinRows: change,
// reset with an activation code, activation (migration 0010).

// ReplacePIN implements pin.LifecycleStore: one conditional UPDATE on the
// old hash, so a concurrent change or reset wins over this one.
func (p pinRows) ReplacePIN(ctx context.Context, subject, oldHash, newHash string, seal audit.Sealer) (bool, error) {
	return p.change(ctx, "changing", seal, p.replace, p.setArgs(newHash, subject, oldHash)...)
}

// ResetPIN implements pin.LifecycleStore.
func (p pinRows) ResetPIN(ctx context.Context, subject string, codeHash []byte, expires time.Time, seal audit.Sealer) (bool, error) {
	return p.change(ctx, "resetting", seal, p.clear, codeHash, expires.UnixNano(), subject)
}

// ActivatePIN implements pin.LifecycleStore in one transaction: the
// conditional UPDATE that consumes a matching, unexpired, unvoided code;
// failing that, the reason read back, and a wrong code counted.
func (p pinRows) ActivatePIN(ctx context.Context, subject string, codeHash []byte, hash string, now time.Time, limit int, seal audit.Sealer) (pin.ActivationOutcome, int, error) {
	out, failures := pin.ActivationNone, 0
	err := p.db.auditedTx(ctx, func(t *txn, records *auditInTx) error {
		out, failures = pin.ActivationNone, 0
		res, err := t.exec(ctx, p.activate, p.setArgs(hash, subject, codeHash, now.UnixNano(), limit)...)
		if err != nil {
			return mapErr("store: activating "+p.what, err)
		}
		if n, err := res.RowsAffected(); err != nil {
			return err
		} else if n == 1 {
			if err := records.appendAudit(ctx, t, seal); err != nil {
				return fmt.Errorf("store: activating %s: writing its audit record: %w", p.what, err)
			}
			out = pin.Activated
			return nil
		}
		var pending bool
		var expires sql.NullInt64
		var count int64
		err = t.queryRow(ctx, p.pending, subject).Scan(&pending, &expires, &count)
		failures = int(count)
		switch {
		case errors.Is(err, sql.ErrNoRows):
			return nil
		case err != nil:
			return mapErr("store: reading the activation of "+p.what, err)
		case !pending || failures >= limit:
			return nil
		case expires.Int64 <= now.UnixNano():
			out = pin.ActivationExpired
			return nil
		}
		if err := t.queryRow(ctx, p.wrong, subject, limit).Scan(&count); err != nil {
			return mapErr("store: counting a wrong activation code", err)
		}
		out, failures = pin.ActivationWrong, int(count)
		return nil
	})
	if err != nil {
		return pin.ActivationNone, 0, err
	}
	return out, failures, nil
}

// The signing credentials' and the mobile IDs' PINs have the life cycle.
var (
	_ pin.LifecycleStore = (*SigningCredentials)(nil)
	_ pin.LifecycleStore = (*Identity)(nil)
)

// ReplacePIN implements pin.LifecycleStore for signing PINs.
func (s *SigningCredentials) ReplacePIN(ctx context.Context, subject, oldHash, newHash string, seal audit.Sealer) (bool, error) {
	return s.pins().ReplacePIN(ctx, subject, oldHash, newHash, seal)
}

// ResetPIN implements pin.LifecycleStore for signing PINs.
func (s *SigningCredentials) ResetPIN(ctx context.Context, subject string, codeHash []byte, expires time.Time, seal audit.Sealer) (bool, error) {
	return s.pins().ResetPIN(ctx, subject, codeHash, expires, seal)
}

// ActivatePIN implements pin.LifecycleStore for signing PINs.
func (s *SigningCredentials) ActivatePIN(ctx context.Context, subject string, codeHash []byte, hash string, now time.Time, limit int, seal audit.Sealer) (pin.ActivationOutcome, int, error) {
	return s.pins().ActivatePIN(ctx, subject, codeHash, hash, now, limit, seal)
}

// ReplacePIN implements pin.LifecycleStore for mobile-ID login PINs.
func (s *Identity) ReplacePIN(ctx context.Context, subject, oldHash, newHash string, seal audit.Sealer) (bool, error) {
	return s.pins().ReplacePIN(ctx, subject, oldHash, newHash, seal)
}

// ResetPIN implements pin.LifecycleStore for mobile-ID login PINs.
func (s *Identity) ResetPIN(ctx context.Context, subject string, codeHash []byte, expires time.Time, seal audit.Sealer) (bool, error) {
	return s.pins().ResetPIN(ctx, subject, codeHash, expires, seal)
}

// ActivatePIN implements pin.LifecycleStore for mobile-ID login PINs.
func (s *Identity) ActivatePIN(ctx context.Context, subject string, codeHash []byte, hash string, now time.Time, limit int, seal audit.Sealer) (pin.ActivationOutcome, int, error) {
	return s.pins().ActivatePIN(ctx, subject, codeHash, hash, now, limit, seal)
}
