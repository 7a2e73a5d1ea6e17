package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"
	"time"

	"github.com/thiqa/thiqa/identity/activity"
	"github.com/thiqa/thiqa/internal/audit"
	"github.com/thiqa/thiqa/notify"
)

var _ notify.Store = (*Notify)(nil)

// notifyName is the notify_state row of the audit log's notifier.
const notifyName = "audit"

// Notify keeps the notifier's cursor, lease and reminders and reads what
// it tells (notify.Store).
type Notify struct{ db *DB }

// Notify returns the store of the notifications to citizens.
func (db *DB) Notify() *Notify { return &Notify{db: db} }

// AuditAfter implements notify.Store: by the primary key, in seq order,
// each record with its hash.
func (s *Notify) AuditAfter(ctx context.Context, after int64, limit int) ([]activity.Record, error) {
	rows, err := s.db.query(ctx, `SELECT `+trailColumns+`, hash FROM audit_log WHERE seq > ? ORDER BY seq LIMIT ?`, after, limit)
	if err != nil {
		return nil, mapErr("store: reading the audit log for notifications", err)
	}
	defer rows.Close()
	out := make([]activity.Record, 0, limit)
	for rows.Next() {
		var r activity.Record
		var ns int64
		var details []byte
		if err := rows.Scan(&r.Seq, &ns, &r.Actor, &r.Action, &r.Object, &r.Outcome, &details, &r.Hash); err != nil {
			return nil, mapErr("store: reading the audit log for notifications", err)
		}
		r.Time = time.Unix(0, ns).UTC()
		if len(details) > 0 && string(details) != "null" {
			r.Details = details
		}
		out = append(out, r)
	}
	return out, mapErr("store: reading the audit log for notifications", rows.Err())
}

// AuditHeadSeq implements notify.Store.
func (s *Notify) AuditHeadSeq(ctx context.Context) (int64, error) {
	var seq int64
	err := s.db.queryRow(ctx, `SELECT seq FROM audit_head WHERE id = 1`).Scan(&seq)
	if err == sql.ErrNoRows {
		return 0, nil
	}
	return seq, mapErr("store: reading the audit head", err)
}

// Owners implements notify.Store: the holders (certificates.holder_civil,
// or the subject of a row not yet backfilled) of the issued certificates
// whose serial or credential ID is among objects.
func (s *Notify) Owners(ctx context.Context, objects []string) (map[string]notify.Owner, error) {
	out := map[string]notify.Owner{}
	objects = slices.Compact(slices.Sorted(slices.Values(objects)))
	for len(objects) > 0 {
		part := objects[:min(len(objects), 400)]
		objects = objects[len(part):]
		args := make([]any, 0, 2*len(part))
		for _, o := range part {
			args = append(args, o)
		}
		for _, o := range part {
			args = append(args, o)
		}
		in := "(?" + strings.Repeat(", ?", len(part)-1) + ")"
		rows, err := s.db.query(ctx, `SELECT serial, credential_id, holder_civil, CASE WHEN holder_civil IS NULL THEN der END
FROM certificates WHERE state = 'issued' AND (serial IN `+in+` OR credential_id IN `+in+`)`, args...)
		if err != nil {
			return nil, mapErr("store: the holders of certificates", err)
		}
		for rows.Next() {
			var serial string
			var cred, civil sql.NullString
			var der []byte
			if err := rows.Scan(&serial, &cred, &civil, &der); err != nil {
				rows.Close()
				return nil, mapErr("store: the holders of certificates", err)
			}
			c := civil.String
			if !civil.Valid {
				c = holderCivilOf(der)
			}
			if c == "" {
				continue
			}
			if slices.Contains(part, serial) {
				out[serial] = notify.Owner{CivilNumber: c}
			}
			if cred.Valid && slices.Contains(part, cred.String) {
				out[cred.String] = notify.Owner{CivilNumber: c, Credential: true}
			}
		}
		err = rows.Err()
		rows.Close()
		if err != nil {
			return nil, mapErr("store: the holders of certificates", err)
		}
	}
	return out, nil
}

// ClientNames implements notify.Store.
func (s *Notify) ClientNames(ctx context.Context, ids []string) (map[string]string, error) {
	return s.db.Activity().ClientNames(ctx, ids)
}

// ClaimLease implements notify.Store in one write transaction (on SQLite
// the write lock, on PostgreSQL the row lock of the upsert): two nodes
// never both hold the lease. The lease is timed by the database's clock
// (lease_until in Unix ns by it), never by the nodes': a node whose clock
// is minutes ahead does not see a live lease as lapsed, nor one behind a
// lapsed lease as live. The lease runs from the clock's reading rounded
// up, and is lapsed once the reading rounded down reaches its end: it
// lasts at least lease from when the claim was made.
func (s *Notify) ClaimLease(ctx context.Context, holder string, lease time.Duration) (claimed bool, cursor int64, err error) {
	if lease <= 0 {
		return false, 0, fmt.Errorf("store: claiming the notification lease: a lease of %s", lease)
	}
	floor, ceil := s.db.clockNanos()
	err = s.db.writeTx(ctx, func(t *txn) error {
		if _, err := t.exec(ctx, `INSERT INTO notify_state (name, cursor_seq, holder, lease_until)
	VALUES (?, COALESCE((SELECT seq FROM audit_head WHERE id = 1), 0), ?, `+ceil+` + ?)
	ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, lease_until = excluded.lease_until
	WHERE notify_state.holder = excluded.holder OR notify_state.lease_until <= `+floor,
			notifyName, holder, int64(lease)); err != nil {
			return err
		}
		var h string
		if err := t.queryRow(ctx, `SELECT holder, cursor_seq FROM notify_state WHERE name = ?`, notifyName).Scan(&h, &cursor); err != nil {
			return err
		}
		claimed = h == holder
		return nil
	})
	if err != nil {
		return false, 0, mapErr("store: claiming the notification lease", err)
	}
	return claimed, cursor, nil
}

// clockNanos returns the SQL of the database's clock in Unix nanoseconds,
// rounded down and up to the clock's resolution (milliseconds on SQLite,
// microseconds on PostgreSQL). On PostgreSQL it is the server's clock
// (clock_timestamp: the time of the statement, not of the transaction's
// start); on SQLite the clock of the machine whose file it is, the same
// for every process sharing the file.
func (db *DB) clockNanos() (floor, ceil string) {
	if db.dialect == DriverPostgres {
		us := `(CAST(EXTRACT(EPOCH FROM clock_timestamp()) * 1000000 AS BIGINT))`
		return us + ` * 1000`, `(` + us + ` + 1) * 1000`
	}
	ms := `(CAST(ROUND(unixepoch('subsec') * 1000) AS INTEGER))`
	return ms + ` * 1000000`, `(` + ms + ` + 1) * 1000000`
}

// ReleaseLease implements notify.Store: the lease lapses at once.
func (s *Notify) ReleaseLease(ctx context.Context, holder string) error {
	err := s.db.writeTx(ctx, func(t *txn) error {
		_, err := t.exec(ctx, `UPDATE notify_state SET lease_until = 0 WHERE name = ? AND holder = ?`, notifyName, holder)
		return err
	})
	return mapErr("store: releasing the notification lease", err)
}

// Advance implements notify.Store.
func (s *Notify) Advance(ctx context.Context, holder string, seq int64) error {
	lost := false
	err := s.db.writeTx(ctx, func(t *txn) error {
		res, err := t.exec(ctx, `UPDATE notify_state SET cursor_seq = CASE WHEN cursor_seq < ? THEN ? ELSE cursor_seq END
	WHERE name = ? AND holder = ?`, seq, seq, notifyName, holder)
		if err != nil {
			return err
		}
		n, err := res.RowsAffected()
		lost = err == nil && n == 0
		return err
	})
	if err != nil {
		return mapErr("store: moving the notification cursor", err)
	}
	if lost {
		return notify.ErrLeaseLost
	}
	return nil
}

// Expiring implements notify.Store through the index certificates_not_after
// (not_after is in Unix seconds). A certificate renewed (replaced by one
// issued or being issued, not withdrawn: the store's expiringWhere) is
// not to be renewed again and is left out. The index range starts at
// after's notAfter (keyset), so a pass reads each certificate once. The
// reminders are probed by their primary key for each certificate read
// (LIMIT 1 OFFSET 0 keeps PostgreSQL from turning the NOT EXISTS into a
// join over every reminder of the window, which it chose, materialised
// for each page, while its statistics still showed the table empty).
func (s *Notify) Expiring(ctx context.Context, now, deadline time.Time, window string, after notify.Expiring, limit int) ([]notify.Expiring, error) {
	from, afterSecs := now.Unix()+1, int64(math.MinInt64)
	if !after.NotAfter.IsZero() {
		afterSecs = after.NotAfter.Unix()
		from = max(from, afterSecs)
	}
	rows, err := s.db.query(ctx, `SELECT c.serial, c.holder_civil, c.not_after FROM certificates c
WHERE c.state = 'issued' AND c.not_after >= ? AND c.not_after <= ? AND (c.not_after > ? OR c.serial > ?)
	AND c.holder_civil IS NOT NULL AND c.holder_civil <> ''
	AND NOT EXISTS (SELECT 1 FROM revocations r WHERE r.serial = c.serial)
	AND NOT EXISTS (SELECT 1 FROM certificates s WHERE s.replaces = c.serial AND s.state <> 'abandoned' AND s.renewal_withdrawn_at IS NULL)
	AND NOT EXISTS (SELECT 1 FROM notify_reminders n WHERE n.serial = c.serial AND n.window_name = ? LIMIT 1 OFFSET 0)
ORDER BY c.not_after, c.serial LIMIT ?`, from, deadline.Unix(), afterSecs, after.Serial, window, limit)
	if err != nil {
		return nil, mapErr("store: the certificates expiring soon", err)
	}
	defer rows.Close()
	var out []notify.Expiring
	for rows.Next() {
		var x notify.Expiring
		var secs int64
		if err := rows.Scan(&x.Serial, &x.CivilNumber, &secs); err != nil {
			return nil, mapErr("store: the certificates expiring soon", err)
		}
		x.NotAfter = time.Unix(secs, 0).UTC()
		out = append(out, x)
	}
	return out, mapErr("store: the certificates expiring soon", rows.Err())
}

// Reminded implements notify.Store; a reminder recorded already is kept.
func (s *Notify) Reminded(ctx context.Context, serial string, windows []string, at time.Time) error {
	err := s.db.writeTx(ctx, func(t *txn) error {
		for _, w := range windows {
			if _, err := t.exec(ctx, `INSERT INTO notify_reminders (serial, window_name, sent_at) VALUES (?, ?, ?)
	ON CONFLICT (serial, window_name) DO NOTHING`, serial, w, at.UnixNano()); err != nil {
				return fmt.Errorf("window %s: %w", w, err)
			}
		}
		return nil
	})
	return mapErr("store: recording an expiry reminder", err)
}

// The store reads and retires the notifier's cursor.
var _ notify.CursorStore = (*Notify)(nil)

// NotifyCursor implements notify.CursorStore: the notify_state row, its
// lease judged live by the database's clock (as ClaimLease judges it), and
// the audit head.
func (s *Notify) NotifyCursor(ctx context.Context) (notify.Cursor, error) {
	floor, _ := s.db.clockNanos()
	var c notify.Cursor
	var until, live int64
	err := s.db.queryRow(ctx, `SELECT cursor_seq, holder, lease_until, CASE WHEN lease_until > `+floor+` THEN 1 ELSE 0 END
FROM notify_state WHERE name = ?`, notifyName).Scan(&c.Seq, &c.Holder, &until, &live)
	switch {
	case err == nil:
		c.Set, c.LeaseLive = true, live == 1
		if until > 0 {
			c.LeaseUntil = time.Unix(0, until).UTC()
		}
	case !errors.Is(err, sql.ErrNoRows):
		return notify.Cursor{}, mapErr("store: reading the notification cursor", err)
	}
	if c.Head, err = s.AuditHeadSeq(ctx); err != nil {
		return notify.Cursor{}, err
	}
	return c, nil
}

// RetireCursor implements notify.CursorStore in one write transaction: the
// row is deleted only while no lease is live by the database's clock, nor
// lapsed less than quiet ago (one conditional DELETE: a claim committed
// meanwhile keeps it; a lease given up, lease_until 0, lapsed long ago),
// then the audit head is read under its lock, so that the cursor's lag
// and the record seal returns are exact, and the record is appended. Once
// deleted, the next ClaimLease starts the cursor at the head.
func (s *Notify) RetireCursor(ctx context.Context, quiet time.Duration, seal func(notify.Cursor) (audit.Sealer, error)) (notify.Cursor, error) {
	floor, _ := s.db.clockNanos()
	var c notify.Cursor
	err := s.db.auditedTx(ctx, func(t *txn, records *auditInTx) error {
		c = notify.Cursor{}
		var until int64
		err := t.queryRow(ctx, `DELETE FROM notify_state WHERE name = ? AND lease_until <= `+floor+` - ?
	RETURNING cursor_seq, holder, lease_until`, notifyName, int64(max(quiet, 0))).Scan(&c.Seq, &c.Holder, &until)
		if errors.Is(err, sql.ErrNoRows) {
			// No cursor, or a lease live or lapsed too recently.
			var live int64
			err = t.queryRow(ctx, `SELECT holder, lease_until, CASE WHEN lease_until > `+floor+` THEN 1 ELSE 0 END
FROM notify_state WHERE name = ?`, notifyName).Scan(&c.Holder, &until, &live)
			if errors.Is(err, sql.ErrNoRows) {
				c = notify.Cursor{}
				return nil
			}
			if err != nil {
				return mapErr("store: reading the notification lease", err)
			}
			return &notify.LeaseError{Holder: c.Holder, Until: time.Unix(0, until).UTC(), Live: live == 1}
		}
		if err != nil {
			return mapErr("store: deleting the notification cursor", err)
		}
		c.Set = true
		if until > 0 {
			c.LeaseUntil = time.Unix(0, until).UTC()
		}
		var h audit.Head
		if err := t.auditStmt(ctx, s.db.auditSQL.head).QueryRowContext(ctx).Scan(&h.Seq, &h.Hash); err != nil {
			return mapErr("store: reading the audit head", err)
		}
		c.Head = h.Seq
		sealer, err := seal(c)
		if err != nil {
			return err
		}
		if err := records.appendAudit(ctx, t, sealer); err != nil {
			return fmt.Errorf("store: retiring the notification cursor: writing its audit record: %w", err)
		}
		return nil
	})
	if err != nil {
		return notify.Cursor{}, err
	}
	return c, nil
}
