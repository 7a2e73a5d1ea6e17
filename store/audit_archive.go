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

// The store implements the storage of audit archives.
var _ audit.ArchiveStore = (*DB)(nil)

// AuditArchives implements audit.ArchiveLister: the archived ranges of
// the audit log (table audit_archives), in seq order.
func (db *DB) AuditArchives(ctx context.Context) ([]audit.ArchiveRow, error) {
	rows, err := db.query(ctx, `SELECT first_seq, last_seq, last_hash, file_name, file_sha256, created_unix_ns, state, checkpoint_line,
	replaced_from, replacement_file, replacement_sha256
FROM audit_archives ORDER BY first_seq`)
	if err != nil {
		return nil, mapErr("store: reading the audit archives", err)
	}
	defer rows.Close()
	var out []audit.ArchiveRow
	for rows.Next() {
		var r audit.ArchiveRow
		var ns int64
		if err := rows.Scan(&r.FirstSeq, &r.LastSeq, &r.LastHash, &r.File, &r.FileSHA256, &ns, &r.State, &r.Checkpoint,
			&r.ReplacedFrom, &r.ReplacementFile, &r.ReplacementSHA256); err != nil {
			return nil, mapErr("store: reading the audit archives", err)
		}
		r.Created = time.Unix(0, ns).UTC()
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		return nil, mapErr("store: reading the audit archives", err)
	}
	return out, nil
}

// StartAuditArchive implements audit.ArchiveStore: in one transaction,
// under the audit head's lock, it checks that row continues the archived
// ranges (the last one done, or none and row starting at seq 1), that the
// live log starts at row.FirstSeq and holds record row.LastSeq with
// row.LastHash, inserts row and appends what seal returns. seal is given,
// read in the same transaction, the notifier's cursor (notify_state): it
// only moves forward, so a range that ends at or before it here was
// notified.
func (db *DB) StartAuditArchive(ctx context.Context, row audit.ArchiveRow, seal func(audit.ArchiveStart) ([]audit.Record, error)) error {
	var last audit.Head
	err := db.writeTx(ctx, func(t *txn) error {
		var h audit.Head
		if err := t.auditStmt(ctx, db.auditSQL.head).QueryRowContext(ctx).Scan(&h.Seq, &h.Hash); err != nil {
			return mapErr("store: reading the audit head", err)
		}
		var prevLast sql.NullInt64
		var prevState sql.NullString
		err := t.queryRow(ctx, "SELECT last_seq, state FROM audit_archives ORDER BY first_seq DESC LIMIT 1").Scan(&prevLast, &prevState)
		if err != nil && !errors.Is(err, sql.ErrNoRows) {
			return mapErr("store: reading the audit archives", err)
		}
		switch {
		case prevState.Valid && prevState.String != audit.ArchiveDone:
			return fmt.Errorf("%w: the archive ending at record %d is unfinished", audit.ErrArchiveConflict, prevLast.Int64)
		case prevLast.Int64+1 != row.FirstSeq:
			return fmt.Errorf("%w: the archived records end at %d, the new range starts at %d", audit.ErrArchiveConflict, prevLast.Int64, row.FirstSeq)
		}
		var first sql.NullInt64
		if err := t.queryRow(ctx, "SELECT MIN(seq) FROM audit_log").Scan(&first); err != nil {
			return mapErr("store: reading the first audit record", err)
		}
		if first.Int64 != row.FirstSeq {
			return fmt.Errorf("%w: the live log starts at record %d, not %d", audit.ErrArchiveConflict, first.Int64, row.FirstSeq)
		}
		var hash []byte
		err = t.queryRow(ctx, "SELECT hash FROM audit_log WHERE seq = ?", row.LastSeq).Scan(&hash)
		if err != nil && !errors.Is(err, sql.ErrNoRows) {
			return mapErr("store: reading an audit record", err)
		}
		if !bytes.Equal(hash, row.LastHash) {
			return fmt.Errorf("%w: the live log does not hold record %d with the archive's hash", audit.ErrArchiveConflict, row.LastSeq)
		}
		if _, err := t.exec(ctx, `INSERT INTO audit_archives (first_seq, last_seq, last_hash, file_name, file_sha256, created_unix_ns, state, checkpoint_line)
VALUES (?, ?, ?, ?, ?, ?, ?, ?)`, row.FirstSeq, row.LastSeq, row.LastHash, row.File, row.FileSHA256, row.Created.UnixNano(), audit.ArchiveDeleting, row.Checkpoint); err != nil {
			return mapErr("store: recording the audit archive", err)
		}
		start := audit.ArchiveStart{Head: h}
		if start.NotifyCursor, start.NotifyCursorSet, err = notifyCursor(ctx, t.queryRow); err != nil {
			return err
		}
		last, err = t.sealAndAppend(ctx, h, func(audit.Head) ([]audit.Record, error) { return seal(start) })
		return err
	})
	if err == nil && last.Hash != nil {
		db.setAuditHeadHint(last)
	}
	return err
}

// AuditNotifyCursor implements audit.ArchiveStore: the cursor of the
// notifications to citizens (notify_state), set false when the notifier
// never ran.
func (db *DB) AuditNotifyCursor(ctx context.Context) (cursor int64, set bool, err error) {
	return notifyCursor(ctx, db.queryRow)
}

// notifyCursor reads the notifier's cursor with queryRow (the database's
// or a transaction's).
func notifyCursor(ctx context.Context, queryRow func(context.Context, string, ...any) *sql.Row) (int64, bool, error) {
	var cursor int64
	err := queryRow(ctx, "SELECT cursor_seq FROM notify_state WHERE name = ?", notifyName).Scan(&cursor)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, false, nil
	}
	if err != nil {
		return 0, false, mapErr("store: reading the notification cursor", err)
	}
	return cursor, true, nil
}

// DeleteArchivedAuditRecords implements audit.ArchiveStore: it deletes up
// to limit of the oldest records of [firstSeq, lastSeq], a range recorded
// in state deleting (the trigger on audit_log lets nothing else go).
func (db *DB) DeleteArchivedAuditRecords(ctx context.Context, firstSeq, lastSeq int64, limit int) (int64, error) {
	var n int64
	err := db.writeTx(ctx, func(t *txn) error {
		var state string
		err := t.queryRow(ctx, "SELECT state FROM audit_archives WHERE first_seq = ? AND last_seq = ?", firstSeq, lastSeq).Scan(&state)
		if errors.Is(err, sql.ErrNoRows) {
			return fmt.Errorf("%w: no archived range %d-%d is recorded", audit.ErrArchiveConflict, firstSeq, lastSeq)
		}
		if err != nil {
			return mapErr("store: reading the audit archives", err)
		}
		if state != audit.ArchiveDeleting {
			n = 0
			return nil
		}
		res, err := t.exec(ctx, `DELETE FROM audit_log WHERE seq IN (
	SELECT seq FROM audit_log WHERE seq >= ? AND seq <= ? ORDER BY seq LIMIT ?)`, firstSeq, lastSeq, limit)
		if err != nil {
			return mapErr("store: deleting archived audit records", err)
		}
		n, err = res.RowsAffected()
		return err
	})
	return n, err
}

// FinishAuditArchive implements audit.ArchiveStore: the range starting at
// firstSeq is done (a range already done stays so).
func (db *DB) FinishAuditArchive(ctx context.Context, firstSeq int64) error {
	return db.writeTx(ctx, func(t *txn) error {
		var left int64
		var last int64
		if err := t.queryRow(ctx, "SELECT last_seq FROM audit_archives WHERE first_seq = ?", firstSeq).Scan(&last); err != nil {
			return mapErr("store: reading the audit archives", err)
		}
		if err := t.queryRow(ctx, "SELECT COUNT(*) FROM audit_log WHERE seq >= ? AND seq <= ?", firstSeq, last).Scan(&left); err != nil {
			return mapErr("store: counting archived audit records", err)
		}
		if left > 0 {
			return fmt.Errorf("%w: %d records of the range %d-%d are still live", audit.ErrArchiveConflict, left, firstSeq, last)
		}
		if _, err := t.exec(ctx, "UPDATE audit_archives SET state = ? WHERE first_seq = ? AND state = ?",
			audit.ArchiveDone, firstSeq, audit.ArchiveDeleting); err != nil {
			return mapErr("store: finishing the audit archive", err)
		}
		return nil
	})
}

// ReplaceLostAuditArchive implements audit.ArchiveStore: in one
// transaction, under the audit head's lock, it checks that the range
// starting at firstSeq is the last one, still being deleted and not
// replaced yet, and that its live records start at rep.From (rep.From is
// the range's last seq + 1 when none is live), records the replacement
// and appends what seal returns.
func (db *DB) ReplaceLostAuditArchive(ctx context.Context, firstSeq int64, rep audit.ArchiveReplacement, seal func(audit.Head) ([]audit.Record, error)) error {
	var last audit.Head
	err := db.writeTx(ctx, func(t *txn) error {
		var h audit.Head
		if err := t.auditStmt(ctx, db.auditSQL.head).QueryRowContext(ctx).Scan(&h.Seq, &h.Hash); err != nil {
			return mapErr("store: reading the audit head", err)
		}
		var lastSeq, replaced, after int64
		var state string
		err := t.queryRow(ctx, "SELECT last_seq, state, replaced_from FROM audit_archives WHERE first_seq = ?", firstSeq).Scan(&lastSeq, &state, &replaced)
		if errors.Is(err, sql.ErrNoRows) {
			return fmt.Errorf("%w: no archived range starts at record %d", audit.ErrArchiveConflict, firstSeq)
		}
		if err != nil {
			return mapErr("store: reading the audit archives", err)
		}
		if err := t.queryRow(ctx, "SELECT COUNT(*) FROM audit_archives WHERE first_seq > ?", firstSeq).Scan(&after); err != nil {
			return mapErr("store: reading the audit archives", err)
		}
		switch {
		case state != audit.ArchiveDeleting || after > 0:
			return fmt.Errorf("%w: the archived range %d-%d is not the last one still being deleted", audit.ErrArchiveConflict, firstSeq, lastSeq)
		case replaced != 0:
			return fmt.Errorf("%w: the archived range %d-%d was replaced already (from record %d)", audit.ErrArchiveConflict, firstSeq, lastSeq, replaced)
		}
		var first sql.NullInt64
		if err := t.queryRow(ctx, "SELECT MIN(seq) FROM audit_log WHERE seq >= ?", firstSeq).Scan(&first); err != nil {
			return mapErr("store: reading the first audit record", err)
		}
		live := lastSeq + 1
		if first.Valid && first.Int64 <= lastSeq {
			live = first.Int64
		}
		if rep.From != live {
			return fmt.Errorf("%w: the live records of the range %d-%d start at %d, not %d", audit.ErrArchiveConflict, firstSeq, lastSeq, live, rep.From)
		}
		sum := rep.FileSHA256
		if sum == nil {
			sum = []byte{}
		}
		if _, err := t.exec(ctx, "UPDATE audit_archives SET replaced_from = ?, replacement_file = ?, replacement_sha256 = ? WHERE first_seq = ?",
			rep.From, rep.File, sum, firstSeq); err != nil {
			return mapErr("store: recording the replacement archive", err)
		}
		last, err = t.sealAndAppend(ctx, h, seal)
		return err
	})
	if err == nil && last.Hash != nil {
		db.setAuditHeadHint(last)
	}
	return err
}
