package store

import (
	"context"

	"github.com/thiqa/thiqa/internal/audit"
)

// auditInTx collects, for one write transaction, the audit records of the
// change it commits: appendAudit seals them into the chain inside the
// transaction, and done (after the commit) moves the DB's head hint.
type auditInTx struct {
	head audit.Head // the head after the records, zero when none were written
}

// appendAudit seals the records of seal (nil: none) into the chain within
// t, after the change t makes: it reads the head under its lock (FOR
// UPDATE on PostgreSQL; SQLite's transaction holds the write lock from
// BEGIN), inserts the records and moves the head. The change and its
// records are committed together or not at all. The head is locked last,
// so the lock is held only for the rest of the transaction.
func (a *auditInTx) appendAudit(ctx context.Context, t *txn, seal audit.Sealer) error {
	a.head = audit.Head{}
	if seal == nil {
		return nil
	}
	var h audit.Head
	if err := t.auditStmt(ctx, t.db.auditSQL.head).QueryRowContext(ctx).Scan(&h.Seq, &h.Hash); err != nil {
		return mapErr("store: reading the audit head", err)
	}
	last, err := t.sealAndAppend(ctx, h, seal)
	if err != nil {
		return err
	}
	a.head = last
	return nil
}

// done tells db of the head the committed transaction left (PostgreSQL's
// one-round-trip append starts from it).
func (a *auditInTx) done(db *DB) {
	if a.head.Hash != nil {
		db.setAuditHeadHint(a.head)
	}
}
