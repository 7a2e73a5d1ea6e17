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

// pinRows keeps citizens' PIN state (the pin_hash and pin_failures columns)
// in the rows of one table, keyed by one column: signing credentials and
// mobile IDs each have one. It is the storage half of package pin.
type pinRows struct {
	db *DB
	// create, attempt, state and reset are the statements for the table,
	// replace, clear, activate, pending and wrong those of the life cycle
	// (pinlife.go); they are built from constants, never from input.
	create, attempt, state, reset, locked    string
	replace, clear, activate, pending, wrong string
	// stampCreate adds the time the PIN was set to create's arguments.
	stampCreate bool
	// what names the PIN in errors ("PIN", "login PIN").
	what string
}

// newPinRows prepares the statements for table, keyed by key.
func newPinRows(db *DB, table, key, what string, stampCreate bool) pinRows {
	set := "pin_hash = ?, pin_failures = 0"
	if stampCreate {
		set += ", pin_set_at = ?"
	}
	return pinRows{
		db:      db,
		create:  `UPDATE ` + table + ` SET ` + set + ` WHERE ` + key + ` = ? AND pin_hash IS NULL AND activation_hash IS NULL`,
		attempt: `UPDATE ` + table + ` SET pin_failures = pin_failures + 1 WHERE ` + key + ` = ? AND pin_hash IS NOT NULL AND pin_failures < ? RETURNING pin_hash, pin_failures`,
		state:   `SELECT pin_hash, pin_failures FROM ` + table + ` WHERE ` + key + ` = ?`,
		reset:   `UPDATE ` + table + ` SET pin_failures = 0 WHERE ` + key + ` = ? AND pin_failures <> 0`,
		// locked changes nothing: it finds (and on PostgreSQL row-locks
		// until the commit) a PIN still locked with the hash that was
		// checked, so that a reset or change cannot slip in before its
		// record is committed.
		locked:  `UPDATE ` + table + ` SET pin_failures = pin_failures WHERE ` + key + ` = ? AND pin_hash = ? AND pin_failures >= ?`,
		replace: `UPDATE ` + table + ` SET ` + set + ` WHERE ` + key + ` = ? AND pin_hash = ?`,
		clear: `UPDATE ` + table + ` SET pin_hash = NULL, pin_failures = 0, activation_hash = ?, activation_expires_at = ?, activation_failures = 0
	WHERE ` + key + ` = ?`,
		activate: `UPDATE ` + table + ` SET ` + set + `, activation_hash = NULL, activation_expires_at = NULL, activation_failures = 0
	WHERE ` + key + ` = ? AND activation_hash = ? AND activation_expires_at > ? AND activation_failures < ?`,
		pending: `SELECT activation_hash IS NOT NULL, activation_expires_at, activation_failures FROM ` + table + ` WHERE ` + key + ` = ?`,
		wrong: `UPDATE ` + table + ` SET activation_failures = activation_failures + 1
	WHERE ` + key + ` = ? AND activation_hash IS NOT NULL AND activation_failures < ? RETURNING activation_failures`,
		stampCreate: stampCreate,
		what:        what,
	}
}

// CreatePIN implements pin.Store: it sets the PIN hash of subject when none
// is set, with the audit records of seal, and reports whether it did.
func (p pinRows) CreatePIN(ctx context.Context, subject, hash string, seal audit.Sealer) (bool, error) {
	return p.change(ctx, "setting", seal, p.create, p.setArgs(hash, subject)...)
}

// change runs one conditional UPDATE of a PIN (doing: what it does, for
// errors) and, when it changed the row, seals the audit records of seal
// (nil: none) in the same transaction. It reports whether it changed it.
func (p pinRows) change(ctx context.Context, doing string, seal audit.Sealer, q string, args ...any) (bool, error) {
	var n int64
	err := p.db.auditedTx(ctx, func(t *txn, records *auditInTx) error {
		n = 0
		res, err := t.exec(ctx, q, args...)
		if err != nil {
			return mapErr("store: "+doing+" "+p.what, err)
		}
		if n, err = res.RowsAffected(); err != nil || n != 1 {
			return err
		}
		if err := records.appendAudit(ctx, t, seal); err != nil {
			return fmt.Errorf("store: %s %s: writing its audit record: %w", doing, p.what, err)
		}
		return nil
	})
	if err != nil {
		return false, err
	}
	return n == 1, nil
}

// setArgs are the arguments of a statement that sets a PIN hash (create,
// replace, activate) up to its key, followed by more.
func (p pinRows) setArgs(hash, subject string, more ...any) []any {
	args := []any{hash}
	if p.stampCreate {
		args = append(args, time.Now().UnixNano())
	}
	return append(append(args, subject), more...)
}

// AttemptPIN implements pin.Store: one conditional UPDATE counts the try
// before the hash is checked, so parallel guesses never exceed limit.
func (p pinRows) AttemptPIN(ctx context.Context, subject string, limit int) (pin.State, bool, error) {
	var st pin.State
	found := false
	err := p.db.writeTx(ctx, func(t *txn) error {
		found = false
		var hash sql.NullString
		var failures int64
		err := t.queryRow(ctx, p.attempt, subject, limit).Scan(&hash, &failures)
		if err == nil {
			st, found = pin.State{Hash: hash.String, Failures: int(failures) - 1}, true
			return nil
		}
		if !errors.Is(err, sql.ErrNoRows) {
			return mapErr("store: counting "+p.what+" try", err)
		}
		err = t.queryRow(ctx, p.state, subject).Scan(&hash, &failures)
		if errors.Is(err, sql.ErrNoRows) {
			return nil
		}
		if err != nil {
			return mapErr("store: reading "+p.what+" state", err)
		}
		if hash.Valid {
			st, found = pin.State{Hash: hash.String, Failures: int(failures)}, true
		}
		return nil
	})
	return st, found, err
}

// LockPIN implements pin.Store: the record of a lock is committed in a
// transaction that finds the PIN still locked with hash (the lock itself
// was committed when its try was counted, see pin.Manager.check). When the
// record cannot be written the failure is counted as a failed audit append
// (auditedTx) and nothing changes: the PIN stays locked.
func (p pinRows) LockPIN(ctx context.Context, subject, hash string, limit int, seal audit.Sealer) (bool, error) {
	return p.change(ctx, "recording the lock of", seal, p.locked, subject, hash, limit)
}

// ResetPINFailures implements pin.Store.
func (p pinRows) ResetPINFailures(ctx context.Context, subject string) error {
	return p.db.writeTx(ctx, func(t *txn) error {
		_, err := t.exec(ctx, p.reset, subject)
		return mapErr("store: resetting "+p.what+" failures", err)
	})
}
