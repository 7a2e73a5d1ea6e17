package store

import (
	"bytes"
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/thiqa/thiqa/internal/audit"
)

// auditInsertChunk is how many records one INSERT statement carries (9
// parameters each; well under both dialects' parameter limits).
const auditInsertChunk = 200

// auditPageSize is how many records AuditRecords reads per query.
const auditPageSize = 1000

// The store implements the audit log's storage.
var _ audit.Store = (*DB)(nil)

// AppendAuditRecords implements audit.Store: in one transaction it locks
// the head (SELECT … FOR UPDATE on PostgreSQL; on SQLite the transaction
// holds the write lock from BEGIN), calls seal, checks that the sealed
// records continue the chain, inserts them and moves the head.
func (db *DB) AppendAuditRecords(ctx context.Context, seal func(audit.Head) ([]audit.Record, error)) error {
	return db.writeTx(ctx, func(t *txn) error {
		q := "SELECT seq, hash FROM audit_head WHERE id = 1"
		if db.dialect == DriverPostgres {
			q += " FOR UPDATE"
		}
		var h audit.Head
		if err := t.queryRow(ctx, q).Scan(&h.Seq, &h.Hash); err != nil {
			return mapErr("store: reading the audit head", err)
		}
		recs, err := seal(h)
		if err != nil {
			return err
		}
		if len(recs) == 0 {
			return nil
		}
		if err := checkContinues(h, recs); err != nil {
			return err
		}
		for start := 0; start < len(recs); start += auditInsertChunk {
			end := min(start+auditInsertChunk, len(recs))
			if err := t.insertAuditRecords(ctx, recs[start:end]); err != nil {
				return err
			}
		}
		last := recs[len(recs)-1]
		res, err := t.exec(ctx, "UPDATE audit_head SET seq = ?, hash = ? WHERE id = 1 AND seq = ?", last.Seq, last.Hash, h.Seq)
		if err != nil {
			return mapErr("store: moving the audit head", err)
		}
		if n, err := res.RowsAffected(); err != nil || n != 1 {
			return fmt.Errorf("store: moving the audit head: head moved concurrently (rows %d, %v)", n, err)
		}
		return nil
	})
}

// checkContinues refuses records that do not extend the chain at head.
func checkContinues(h audit.Head, recs []audit.Record) error {
	prev, seq := h.Hash, h.Seq
	for _, r := range recs {
		seq++
		if r.Seq != seq || !bytes.Equal(r.PrevHash, prev) || len(r.Hash) != audit.HashSize {
			return fmt.Errorf("store: audit record %d does not continue the chain at seq %d", r.Seq, seq)
		}
		prev = r.Hash
	}
	return nil
}

func (t *txn) insertAuditRecords(ctx context.Context, recs []audit.Record) error {
	var b strings.Builder
	b.WriteString("INSERT INTO audit_log (seq, at_unix_ns, actor, action, object, outcome, details, prev_hash, hash) VALUES ")
	args := make([]any, 0, 9*len(recs))
	for i, r := range recs {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString("(?,?,?,?,?,?,?,?,?)")
		args = append(args, r.Seq, r.Time.UnixNano(), r.Actor, r.Action, r.Object, r.Outcome,
			string(r.Details), r.PrevHash, r.Hash)
	}
	if _, err := t.exec(ctx, b.String(), args...); err != nil {
		return mapErr("store: inserting audit records", err)
	}
	return nil
}

// AuditHead implements audit.Store.
func (db *DB) AuditHead(ctx context.Context) (audit.Head, error) {
	var h audit.Head
	if err := db.queryRow(ctx, "SELECT seq, hash FROM audit_head WHERE id = 1").Scan(&h.Seq, &h.Hash); err != nil {
		return audit.Head{}, mapErr("store: reading the audit head", err)
	}
	return h, nil
}

// AuditRecords implements audit.Store. It reads pages of records by seq
// (keyset pagination), so memory stays constant and no read transaction is
// held while fn runs.
func (db *DB) AuditRecords(ctx context.Context, fromSeq int64, fn func(audit.Record) error) error {
	page := make([]audit.Record, 0, auditPageSize)
	next := fromSeq
	for {
		page = page[:0]
		rows, err := db.query(ctx, `SELECT seq, at_unix_ns, actor, action, object, outcome, details, prev_hash, hash
FROM audit_log WHERE seq >= ? ORDER BY seq LIMIT ?`, next, auditPageSize)
		if err != nil {
			return mapErr("store: reading audit records", err)
		}
		for rows.Next() {
			var r audit.Record
			var ns int64
			var details []byte
			if err := rows.Scan(&r.Seq, &ns, &r.Actor, &r.Action, &r.Object, &r.Outcome, &details, &r.PrevHash, &r.Hash); err != nil {
				rows.Close()
				return mapErr("store: reading audit records", err)
			}
			r.Time = time.Unix(0, ns).UTC()
			r.Details = details
			page = append(page, r)
		}
		err = rows.Err()
		rows.Close()
		if err != nil {
			return mapErr("store: reading audit records", err)
		}
		for _, r := range page {
			if err := fn(r); err != nil {
				return err
			}
		}
		if len(page) < auditPageSize {
			return nil
		}
		next = page[len(page)-1].Seq + 1
	}
}
