package store

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/thiqa/thiqa/internal/audit"
)

// auditInTx collects, for one write transaction, the audit records of the
// change it commits: appendAudit seals them into the chain inside the
// transaction, and done (after the commit) moves the DB's head hint and
// tells the sealers. Its state is that of the last attempt only: begin
// clears it at the start of each attempt, and done clears it once told, so
// that records sealed by an attempt that was rolled back, or already
// reported, are never reported (again) as committed.
type auditInTx struct {
	head   audit.Head // the head after the records, zero when none were written
	sealed []audit.Sealer
	// failed is the sealer whose records the last attempt could not seal
	// or write (nil: none), and why.
	failed    audit.Sealer
	failedErr error
}

// begin forgets what an earlier attempt of the transaction sealed.
func (a *auditInTx) begin() { *a = auditInTx{} }

// appendAudit seals the records of seal (nil: none) into the chain within
// t, after the change t makes: it reads the head under its lock (FOR
// UPDATE on PostgreSQL; SQLite's transaction holds the write lock from
// BEGIN), inserts the records and moves the head. The change and its
// records are committed together or not at all. The head is locked last,
// so the lock is held only for the rest of the transaction.
func (a *auditInTx) appendAudit(ctx context.Context, t *txn, seal audit.Sealer) error {
	a.begin()
	if seal == nil {
		return nil
	}
	var h audit.Head
	if err := t.auditStmt(ctx, t.db.auditSQL.head).QueryRowContext(ctx).Scan(&h.Seq, &h.Hash); err != nil {
		a.failed, a.failedErr = seal, err
		return mapErr("store: reading the audit head", err)
	}
	last, err := t.sealAndAppend(ctx, h, seal.Seal)
	if err != nil {
		a.failed, a.failedErr = seal, err
		return err
	}
	a.head, a.sealed = last, []audit.Sealer{seal}
	return nil
}

// done tells db of the head the committed transaction left (PostgreSQL's
// one-round-trip append starts from it) and the sealers that their records
// were committed, once.
func (a *auditInTx) done(db *DB) {
	if a.head.Hash != nil {
		db.setAuditHeadHint(a.head)
	}
	for _, s := range a.sealed {
		s.Committed()
	}
	a.begin()
}

// finish ends a transaction that ran appendAudit: done when it committed
// (err nil). When it failed, its change was answered as failed and its
// records were not written: it tells the sealer (audit.FailureNoter), which
// counts one failed audit append (thiqa_audit_append_failures_total, read
// by the ThiqaAuditAppendFailed alert) and logs it. That is so whether the
// records could not be sealed or written, or were written and then lost
// with the transaction: its COMMIT failed, or a statement after them did.
// Only the last attempt counts (begin forgets the earlier ones), and a
// sealer is told once. A COMMIT whose outcome is unknown (ErrOutcomeUnknown)
// is left to the caller when settles is set: it looks whether the change
// took effect and tells the sealer itself (execAuditedSettled).
func (a *auditInTx) finish(db *DB, err error, settles bool) {
	switch {
	case err == nil:
		a.done(db)
		return
	case a.failed != nil:
		noteFailed(a.failed, a.failedErr)
	case settles && errors.Is(err, ErrOutcomeUnknown):
	default:
		for _, s := range a.sealed {
			noteFailed(s, err)
		}
	}
	a.begin()
}

// noteFailed tells seal (nil: none), if it counts failures, that its
// records were not committed with their change.
func noteFailed(seal audit.Sealer, err error) {
	if f, ok := seal.(audit.FailureNoter); ok {
		f.Failed(err)
	}
}

// auditedTx is writeTx for a transaction that commits a change with its
// audit records: fn gets a fresh auditInTx on every attempt, and the
// outcome of the last one is reported to the sealers (finish).
func (db *DB) auditedTx(ctx context.Context, fn func(t *txn, a *auditInTx) error) error {
	return db.auditedTxSettling(ctx, false, fn)
}

// auditedTxSettling is auditedTx; with settles set, a COMMIT whose outcome
// is unknown is not reported to the sealers: the caller settles it.
func (db *DB) auditedTxSettling(ctx context.Context, settles bool, fn func(t *txn, a *auditInTx) error) error {
	var records auditInTx
	err := db.writeTx(ctx, func(t *txn) error {
		records.begin()
		return fn(t, &records)
	})
	records.finish(db, err, settles)
	return err
}

// auditedTxSettled is auditedTx for a change whose own records tell
// whether it took effect: when the connection was lost while the server
// committed it (ErrOutcomeUnknown), it looks for the last record it
// sealed in the log (auditSettle; the change and its records are
// committed together, and its record is the only one with that hash at
// that seq: the hash covers the record's time and its predecessor's). Found, the transaction was committed: it answers
// nil, moves the head hint and tells the sealers. Not found, or when the
// log cannot be read, it tells the sealers of the failure (as auditedTx
// does) and answers it. A transaction that sealed no record is left
// unknown.
func (db *DB) auditedTxSettled(ctx context.Context, fn func(t *txn, a *auditInTx) error) error {
	var tail audit.Head
	var sealed []audit.Sealer
	err := db.auditedTxSettling(ctx, true, func(t *txn, a *auditInTx) error {
		tail, sealed = audit.Head{}, nil
		if err := fn(t, a); err != nil {
			return err
		}
		tail, sealed = a.head, a.sealed
		return nil
	})
	if err == nil || !errors.Is(err, ErrOutcomeUnknown) {
		return err
	}
	if tail.Hash == nil {
		return err
	}
	written, rerr := db.auditSettle(ctx, tail, err)
	if written {
		db.setAuditHeadHint(tail)
		for _, s := range sealed {
			s.Committed()
		}
		return nil
	}
	for _, s := range sealed {
		noteFailed(s, err)
	}
	if rerr != nil {
		return rerr
	}
	return err
}

// settleWait bounds how long auditSettle waits for the audit head's lock.
const settleWait = 30 * time.Second

// auditSettle is auditRecorded for a transaction that locked the audit
// head, sealed records up to tail, and lost its connection during COMMIT
// (lost, its error). A plain read could run before the server has ended
// that transaction (its COMMIT still on its way or being written) and
// answer "not taken" for a change that then takes effect. So on
// PostgreSQL it reads under the head's lock, which the lost transaction
// holds until the server has committed or rolled it back. SQLite commits
// in the process: once COMMIT has returned nothing is under way. The look
// does not end with the request (a COMMIT interrupted by a cancelled
// request is settled too) but waits at most settleWait.
func (db *DB) auditSettle(ctx context.Context, tail audit.Head, lost error) (bool, error) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), settleWait)
	defer cancel()
	if db.dialect != DriverPostgres {
		return db.auditRecorded(ctx, tail, lost)
	}
	var err error
	for attempt := 1; ; attempt++ {
		var hash []byte
		hash, err = db.auditHashLocked(ctx, tail.Seq)
		switch {
		case err == nil:
			return bytes.Equal(hash, tail.Hash), nil
		case errors.Is(err, sql.ErrNoRows):
			return false, nil
		}
		if !isConnLost(err) || attempt == maxReadAttempts || !db.pauseAfterConnLost(ctx, attempt, err) {
			break
		}
	}
	if !errors.Is(lost, ErrOutcomeUnknown) {
		lost = fmt.Errorf("%w: %w", ErrOutcomeUnknown, lost)
	}
	return false, unavailable(fmt.Errorf("store: appending audit records: %w (and reading it back: %w)", lost, err))
}

// auditHashLocked reads the hash of the record at seq under the audit
// head's lock (PostgreSQL), in a transaction it rolls back.
func (db *DB) auditHashLocked(ctx context.Context, seq int64) ([]byte, error) {
	tx, err := db.w.BeginTx(ctx, nil)
	if err != nil {
		return nil, err
	}
	defer func() { _ = tx.Rollback() }()
	var h audit.Head
	if err := tx.StmtContext(ctx, db.auditSQL.head).QueryRowContext(ctx).Scan(&h.Seq, &h.Hash); err != nil {
		return nil, err
	}
	var hash []byte
	err = tx.QueryRowContext(ctx, db.rebind("SELECT hash FROM audit_log WHERE seq = ?"), seq).Scan(&hash)
	return hash, err
}

// chainSealers returns one Sealer writing the records of seals one after
// the other (nil when there are none).
func chainSealers(seals []audit.Sealer) audit.Sealer {
	switch len(seals) {
	case 0:
		return nil
	case 1:
		return seals[0]
	}
	return sealerChain(seals)
}

// sealerChain is chainSealers's Sealer.
type sealerChain []audit.Sealer

// Seal implements audit.Sealer.
func (c sealerChain) Seal(h audit.Head) ([]audit.Record, error) {
	var out []audit.Record
	for _, s := range c {
		recs, err := s.Seal(h)
		if err != nil {
			return nil, err
		}
		if len(recs) > 0 {
			last := recs[len(recs)-1]
			h = audit.Head{Seq: last.Seq, Hash: last.Hash}
		}
		out = append(out, recs...)
	}
	return out, nil
}

// Committed implements audit.Sealer.
func (c sealerChain) Committed() {
	for _, s := range c {
		s.Committed()
	}
}

// Failed implements audit.FailureNoter: each sealer of the chain that
// counts failures is told.
func (c sealerChain) Failed(err error) {
	for _, s := range c {
		if f, ok := s.(audit.FailureNoter); ok {
			f.Failed(err)
		}
	}
}
