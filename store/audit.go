package store

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
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
//
// On PostgreSQL it first tries a single round trip: it seals at the head
// this DB last wrote or saw, and writes the records and moves the head in one
// statement that only takes effect if the head is still there. When another
// instance moved the head meanwhile, nothing is written and the locked path
// runs (seal is called again with the real head).
func (db *DB) AppendAuditRecords(ctx context.Context, seal func(audit.Head) ([]audit.Record, error)) error {
	// unsure is the tail of an earlier attempt whose COMMIT lost its
	// connection and that a read-back did not find: it may still be
	// committing (a server waiting for its synchronous standby), so the
	// locked path looks again under the head's lock before writing.
	var unsure audit.Head
	if db.dialect == DriverPostgres {
		if h, ok := db.auditHeadHint(); ok {
			done, err := db.appendAuditIfHead(ctx, h, seal, &unsure)
			if done || err != nil {
				return err
			}
		}
	}
	return db.appendAuditLocked(ctx, seal, unsure)
}

// appendAuditLocked is AppendAuditRecords's locked path: seal at the head
// read under its lock, write, move the head. unsure (zero if none) is the
// tail of an earlier attempt whose outcome is unknown: found under the
// lock, it is that attempt's records, and nothing more is written.
func (db *DB) appendAuditLocked(ctx context.Context, seal func(audit.Head) ([]audit.Record, error), unsure audit.Head) error {
	for attempt := 1; ; attempt++ {
		var last audit.Head
		already := false
		err := db.writeTx(ctx, func(t *txn) error {
			last, already = audit.Head{}, false
			var h audit.Head
			if err := t.auditStmt(ctx, db.auditSQL.head).QueryRowContext(ctx).Scan(&h.Seq, &h.Hash); err != nil {
				return mapErr("store: reading the audit head", err)
			}
			if unsure.Hash != nil && h.Seq >= unsure.Seq {
				var hash []byte
				err := t.queryRow(ctx, "SELECT hash FROM audit_log WHERE seq = ?", unsure.Seq).Scan(&hash)
				if err != nil && !errors.Is(err, sql.ErrNoRows) {
					return mapErr("store: reading back an audit record", err)
				}
				if bytes.Equal(hash, unsure.Hash) {
					already = true // the earlier attempt was committed after all
					return nil
				}
			}
			var err error
			last, err = t.sealAndAppend(ctx, h, seal)
			return err
		})
		if err == nil && already {
			db.setAuditHeadHint(unsure)
			return nil
		}
		if errors.Is(err, ErrOutcomeUnknown) && last.Hash != nil {
			// The connection was lost during COMMIT: look whether the
			// records are there, and write them (sealed afresh) if not.
			var written bool
			if written, err = db.auditRecorded(ctx, last, err); written {
				err = nil
			} else if err == nil && attempt < maxTxAttempts {
				unsure = last
				continue
			}
		}
		if err == nil && last.Hash != nil {
			db.setAuditHeadHint(last)
		}
		return err
	}
}

// sealAndAppend calls seal at h (the head, read under its lock in this
// transaction), inserts the records it returns and moves the head to the
// last of them, which it returns (zero when seal returned none).
func (t *txn) sealAndAppend(ctx context.Context, h audit.Head, seal func(audit.Head) ([]audit.Record, error)) (audit.Head, error) {
	recs, err := seal(h)
	if err != nil {
		return audit.Head{}, err
	}
	if len(recs) == 0 {
		return audit.Head{}, nil
	}
	if err := checkContinues(h, recs); err != nil {
		return audit.Head{}, err
	}
	if err := t.insertAuditRecords(ctx, recs); err != nil {
		return audit.Head{}, err
	}
	tail := recs[len(recs)-1]
	res, err := t.auditStmt(ctx, t.db.auditSQL.moveHead).ExecContext(ctx, tail.Seq, tail.Hash, h.Seq)
	if err != nil {
		return audit.Head{}, mapErr("store: moving the audit head", err)
	}
	if n, err := res.RowsAffected(); err != nil || n != 1 {
		return audit.Head{}, fmt.Errorf("store: moving the audit head: head moved concurrently (rows %d, %v)", n, err)
	}
	return audit.Head{Seq: tail.Seq, Hash: tail.Hash}, nil
}

// auditRecorded tells, after a write whose outcome is unknown (lost, its
// error), whether the record sealed as tail is in the log: the records of
// one append and the move of the head are committed together, and a
// record's hash covers its predecessor's, so the tail's hash at its seq
// means the whole append was committed, and any other hash (or none) that
// none of it was. It answers an error wrapping ErrOutcomeUnknown when the
// log cannot be read either.
func (db *DB) auditRecorded(ctx context.Context, tail audit.Head, lost error) (bool, error) {
	var hash []byte
	err := db.queryRow(ctx, "SELECT hash FROM audit_log WHERE seq = ?", tail.Seq).Scan(&hash)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return false, nil
	case err != nil:
		if !errors.Is(lost, ErrOutcomeUnknown) {
			lost = fmt.Errorf("%w: %w", ErrOutcomeUnknown, lost)
		}
		return false, unavailable(fmt.Errorf("store: appending audit records: %w (and reading it back: %w)", lost, err))
	}
	return bytes.Equal(hash, tail.Hash), nil
}

// auditHeadHint returns the head this DB last wrote, if any.
func (db *DB) auditHeadHint() (audit.Head, bool) {
	db.hintMu.Lock()
	defer db.hintMu.Unlock()
	return db.hint, db.hint.Hash != nil
}

func (db *DB) setAuditHeadHint(h audit.Head) {
	db.hintMu.Lock()
	defer db.hintMu.Unlock()
	if h.Seq >= db.hint.Seq {
		db.hint = h
	}
}

// maxSingleStatementRecords bounds the one-statement path (9 parameters a
// record, PostgreSQL allows 65,535).
const maxSingleStatementRecords = 1000

// appendAuditIfHead is PostgreSQL's one-round-trip append: seal at the
// presumed head h, then in one statement move the head from h to the last
// record and insert the records, or do neither if the head is no longer h.
// done is false (with a nil error) when the head had moved.
// When the statement lost its connection and a read-back did not find the
// records, *unsure is set to their tail for the locked path to look again.
func (db *DB) appendAuditIfHead(ctx context.Context, h audit.Head, seal func(audit.Head) ([]audit.Record, error), unsure *audit.Head) (done bool, err error) {
	recs, err := seal(h)
	if err != nil {
		return false, err
	}
	if len(recs) == 0 {
		return true, nil
	}
	if len(recs) > maxSingleStatementRecords {
		return false, nil
	}
	if err := checkContinues(h, recs); err != nil {
		return false, err
	}
	last := recs[len(recs)-1]
	var b strings.Builder
	b.WriteString(`WITH moved AS (
	UPDATE audit_head SET seq = ?, hash = ? WHERE id = 1 AND seq = ? AND hash = ? RETURNING 1
)
INSERT INTO audit_log (seq, at_unix_ns, actor, action, object, outcome, details, prev_hash, hash)
SELECT v.* FROM (VALUES `)
	args := make([]any, 0, 4+9*len(recs))
	args = append(args, last.Seq, last.Hash, h.Seq, h.Hash)
	for i, r := range recs {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString("(?::bigint,?::bigint,?::text,?::text,?::text,?::text,?::text,?::bytea,?::bytea)")
		args = append(args, r.Seq, r.Time.UnixNano(), r.Actor, r.Action, r.Object, r.Outcome,
			string(r.Details), r.PrevHash, r.Hash)
	}
	b.WriteString(`) AS v WHERE EXISTS (SELECT 1 FROM moved)`)
	res, err := db.w.ExecContext(ctx, db.rebind(b.String()), args...)
	if isConnLost(err) {
		// One statement, committed on its own: it may have taken effect
		// before the connection went. If it did not, the locked path
		// writes the records, sealed afresh at the real head.
		written, rerr := db.auditRecorded(ctx, audit.Head{Seq: last.Seq, Hash: last.Hash}, err)
		if written {
			db.setAuditHeadHint(audit.Head{Seq: last.Seq, Hash: last.Hash})
		} else if rerr == nil {
			*unsure = audit.Head{Seq: last.Seq, Hash: last.Hash}
		}
		return written, rerr
	}
	if err != nil {
		db.noteWrite(err) // a full disk begins an episode here too (/readyz, the log)
		return false, mapErr("store: appending audit records", err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return false, mapErr("store: appending audit records", err)
	}
	switch n {
	case int64(len(recs)):
		db.setAuditHeadHint(audit.Head{Seq: last.Seq, Hash: last.Hash})
		return true, nil
	case 0:
		return false, nil // the head moved: take the locked path
	default:
		return false, fmt.Errorf("store: appending audit records: %d of %d rows written", n, len(recs))
	}
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

// auditStatements are the locked path's statements, prepared once on
// SQLite's writer connection at Open (SQLite would otherwise parse them on
// every call; pgx caches prepared statements by itself).
type auditStatements struct {
	head, moveHead, insertOne *sql.Stmt
}

const (
	auditHeadSQL      = "SELECT seq, hash FROM audit_head WHERE id = 1"
	auditMoveHeadSQL  = "UPDATE audit_head SET seq = ?, hash = ? WHERE id = 1 AND seq = ?"
	auditInsertPrefix = "INSERT INTO audit_log (seq, at_unix_ns, actor, action, object, outcome, details, prev_hash, hash) VALUES "
	auditInsertRow    = "(?,?,?,?,?,?,?,?,?)"
)

// prepareAudit prepares the audit statements. On PostgreSQL the head is
// read FOR UPDATE; on SQLite the transaction already holds the write lock.
func (db *DB) prepareAudit(ctx context.Context) error {
	head := auditHeadSQL
	if db.dialect == DriverPostgres {
		head += " FOR UPDATE"
	}
	var err error
	for _, p := range []struct {
		dst **sql.Stmt
		q   string
	}{
		{&db.auditSQL.head, head},
		{&db.auditSQL.moveHead, auditMoveHeadSQL},
		{&db.auditSQL.insertOne, auditInsertPrefix + auditInsertRow},
	} {
		if *p.dst, err = db.w.PrepareContext(ctx, db.rebind(p.q)); err != nil {
			return fmt.Errorf("store: preparing %q: %w", p.q, err)
		}
	}
	return nil
}

// auditStmt binds a prepared statement to the transaction.
func (t *txn) auditStmt(ctx context.Context, s *sql.Stmt) *sql.Stmt {
	return t.tx.StmtContext(ctx, s)
}

// insertAuditRecords inserts recs: on SQLite one prepared single-row
// statement per record (no parsing, no round trips); on PostgreSQL
// multi-row statements of up to auditInsertChunk records.
func (t *txn) insertAuditRecords(ctx context.Context, recs []audit.Record) error {
	if t.db.dialect == DriverSQLite {
		st := t.auditStmt(ctx, t.db.auditSQL.insertOne)
		for _, r := range recs {
			if _, err := st.ExecContext(ctx, r.Seq, r.Time.UnixNano(), r.Actor, r.Action, r.Object, r.Outcome,
				string(r.Details), r.PrevHash, r.Hash); err != nil {
				return mapErr("store: inserting audit records", err)
			}
		}
		return nil
	}
	for start := 0; start < len(recs); start += auditInsertChunk {
		chunk := recs[start:min(start+auditInsertChunk, len(recs))]
		var b strings.Builder
		b.WriteString(auditInsertPrefix)
		args := make([]any, 0, 9*len(chunk))
		for i, r := range chunk {
			if i > 0 {
				b.WriteByte(',')
			}
			b.WriteString(auditInsertRow)
			args = append(args, r.Seq, r.Time.UnixNano(), r.Actor, r.Action, r.Object, r.Outcome,
				string(r.Details), r.PrevHash, r.Hash)
		}
		if _, err := t.exec(ctx, b.String(), args...); err != nil {
			return mapErr("store: inserting audit records", err)
		}
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

// AuditRecordHash implements audit.RecordHashReader: the hash of record
// seq by its primary key, nil when the log has no such record.
func (db *DB) AuditRecordHash(ctx context.Context, seq int64) ([]byte, error) {
	var hash []byte
	err := db.queryRow(ctx, "SELECT hash FROM audit_log WHERE seq = ?", seq).Scan(&hash)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, mapErr("store: reading an audit record's hash", err)
	}
	return hash, nil
}
