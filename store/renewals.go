package store

import (
	"context"
	"database/sql"
	"errors"
	"time"

	"github.com/thiqa/thiqa/ca"
)

// Renewals (ca.RenewalStore) over the certificates table: which certificate
// replaces which, what a renewal left to complete, and what expires soon
// (migration 0010).

var _ ca.RenewalStore = (*Certificates)(nil)

// Successor returns the serial of the certificate that replaces serial
// (issued, or an intent still being issued, and not withdrawn), or "".
func (c *Certificates) Successor(ctx context.Context, serial string) (string, error) {
	var succ string
	err := c.db.queryRow(ctx, `SELECT serial FROM certificates WHERE replaces = ? AND state <> 'abandoned' AND renewal_withdrawn_at IS NULL
	ORDER BY created_at LIMIT 1`, serial).Scan(&succ)
	if errors.Is(err, sql.ErrNoRows) {
		return "", nil
	}
	if err != nil {
		return "", mapErr("store: looking for the successor of "+serial, err)
	}
	return succ, nil
}

// FirstCertified returns the earliest notBefore of the key's issued
// certificates, zero when there is none.
func (c *Certificates) FirstCertified(ctx context.Context, keyHash [32]byte) (time.Time, error) {
	var first sql.NullInt64
	err := c.db.queryRow(ctx, `SELECT MIN(not_before) FROM certificates WHERE key_hash = ? AND state = 'issued'`, keyHash[:]).Scan(&first)
	if err != nil {
		return time.Time{}, mapErr("store: reading when a key was first certified", err)
	}
	if !first.Valid {
		return time.Time{}, nil
	}
	return time.Unix(first.Int64, 0).UTC(), nil
}

// PendingRenewals returns up to limit issued renewals not recorded as
// complete (nor withdrawn), oldest first.
func (c *Certificates) PendingRenewals(ctx context.Context, limit int) ([]ca.CertificateRecord, error) {
	return c.list(ctx, certSelect+` WHERE c.replaces IS NOT NULL AND c.renewal_completed_at IS NULL AND c.renewal_withdrawn_at IS NULL
	AND c.state = 'issued' ORDER BY c.issued_at LIMIT ?`, limit)
}

// RenewalPending says whether serial is an issued renewal not recorded as
// complete nor withdrawn.
func (c *Certificates) RenewalPending(ctx context.Context, serial string) (bool, error) {
	var n int
	err := c.db.queryRow(ctx, `SELECT COUNT(*) FROM certificates WHERE serial = ? AND replaces IS NOT NULL AND renewal_completed_at IS NULL
	AND renewal_withdrawn_at IS NULL AND state = 'issued'`, serial).Scan(&n)
	if err != nil {
		return false, mapErr("store: reading whether renewal "+serial+" is pending", err)
	}
	return n > 0, nil
}

// CompleteRenewal records that the renewal by serial is complete.
func (c *Certificates) CompleteRenewal(ctx context.Context, serial string, at time.Time) error {
	return c.db.writeTx(ctx, func(t *txn) error {
		_, err := t.exec(ctx, `UPDATE certificates SET renewal_completed_at = ? WHERE serial = ? AND renewal_completed_at IS NULL`, at.UnixNano(), serial)
		return mapErr("store: completing renewal "+serial, err)
	})
}

// WithdrawRenewal records that the renewal by serial was withdrawn (its
// certificate rejected and revoked): it no longer replaces anything, and
// the certificate it was to replace may be renewed again (migration
// 0022). A certificate that is no renewal, or one withdrawn already, is
// left as it is.
func (c *Certificates) WithdrawRenewal(ctx context.Context, serial string, at time.Time) error {
	return c.db.writeTx(ctx, func(t *txn) error {
		_, err := t.exec(ctx, `UPDATE certificates SET renewal_withdrawn_at = ? WHERE serial = ? AND replaces IS NOT NULL AND renewal_withdrawn_at IS NULL`,
			at.UnixNano(), serial)
		return mapErr("store: withdrawing renewal "+serial, err)
	})
}

// expiringWhere selects the valid certificates (issued, unrevoked, not
// replaced by an issued or pending one that was not withdrawn) whose
// notAfter is in (from, to].
const expiringWhere = ` WHERE c.state = 'issued' AND c.not_after > ? AND c.not_after <= ? AND r.serial IS NULL
	AND NOT EXISTS (SELECT 1 FROM certificates s WHERE s.replaces = c.serial AND s.state <> 'abandoned' AND s.renewal_withdrawn_at IS NULL)`

// Expiring returns up to limit valid certificates that expire after from
// and at most at to, soonest first.
func (c *Certificates) Expiring(ctx context.Context, from, to time.Time, limit int) ([]ca.CertificateRecord, error) {
	return c.list(ctx, certSelect+expiringWhere+` ORDER BY c.not_after, c.serial LIMIT ?`, from.Unix(), to.Unix(), limit)
}

// CountExpiring counts by profile the certificates Expiring lists.
func (c *Certificates) CountExpiring(ctx context.Context, from, to time.Time) (map[string]int, error) {
	rows, err := c.db.query(ctx, `SELECT c.profile, COUNT(*) FROM certificates c LEFT JOIN revocations r ON r.serial = c.serial`+expiringWhere+`
	GROUP BY c.profile`, from.Unix(), to.Unix())
	if err != nil {
		return nil, mapErr("store: counting expiring certificates", err)
	}
	defer rows.Close()
	out := map[string]int{}
	for rows.Next() {
		var profile string
		var n int64
		if err := rows.Scan(&profile, &n); err != nil {
			return nil, mapErr("store: counting expiring certificates", err)
		}
		out[profile] = int(n)
	}
	return out, mapErr("store: counting expiring certificates", rows.Err())
}

// list runs a certSelect query and scans every row.
func (c *Certificates) list(ctx context.Context, q string, args ...any) ([]ca.CertificateRecord, error) {
	rows, err := c.db.query(ctx, q, args...)
	if err != nil {
		return nil, mapErr("store: listing certificates", err)
	}
	defer rows.Close()
	var out []ca.CertificateRecord
	for rows.Next() {
		rec, err := scanCertificate(rows)
		if err != nil {
			return nil, mapErr("store: listing certificates", err)
		}
		out = append(out, *rec)
	}
	return out, mapErr("store: listing certificates", rows.Err())
}
