package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/thiqa/thiqa/timestamp"
)

// The TSA's instances coordinate unit renewals through the store.
var _ timestamp.UnitRenewals = (*TSAUnitRenewals)(nil)

// subjectTSAUnit is the renewal_claims subject of the TSA unit.
const subjectTSAUnit = "tsa-unit"

// TSAUnitRenewals records which TSA unit replaced which, and who renews a
// unit due (timestamp.UnitRenewals), over the renewal_claims table: every
// instance of the TSA sharing the database sees the same claims.
type TSAUnitRenewals struct {
	db *DB
}

// TSAUnitRenewals returns the store of the TSA's unit renewals.
func (db *DB) TSAUnitRenewals() *TSAUnitRenewals { return &TSAUnitRenewals{db: db} }

// ClaimRenewal claims the renewal of the unit previous for holder until
// until, unless another holder's claim is live at now or the renewal is
// done (then it returns the unit recorded). The upsert and the read run in
// one write transaction: on SQLite it holds the write lock, on PostgreSQL
// the upsert locks the row, so two instances never both get the claim.
func (r *TSAUnitRenewals) ClaimRenewal(ctx context.Context, previous, holder string, now, until time.Time) (timestamp.RenewalClaim, error) {
	if previous == "" || holder == "" {
		return timestamp.RenewalClaim{}, errors.New("store: a renewal claim needs the unit's serial and a holder")
	}
	var out timestamp.RenewalClaim
	err := r.db.writeTx(ctx, func(t *txn) error {
		out = timestamp.RenewalClaim{}
		if _, err := t.exec(ctx, `INSERT INTO renewal_claims (subject, previous, holder, claimed_until) VALUES (?, ?, ?, ?)
	ON CONFLICT (subject, previous) DO UPDATE SET holder = excluded.holder, claimed_until = excluded.claimed_until
	WHERE renewal_claims.key_label IS NULL AND (renewal_claims.holder = excluded.holder OR renewal_claims.claimed_until <= ?)`,
			subjectTSAUnit, previous, holder, until.UnixNano(), now.UnixNano()); err != nil {
			return err
		}
		var (
			h           string
			label       sql.NullString
			cert, chain []byte
		)
		if err := t.queryRow(ctx, `SELECT holder, key_label, cert, chain FROM renewal_claims WHERE subject = ? AND previous = ?`,
			subjectTSAUnit, previous).Scan(&h, &label, &cert, &chain); err != nil {
			return err
		}
		if label.Valid {
			out.Next = &timestamp.RenewedUnit{KeyLabel: label.String, Cert: cert, Chain: chain}
			return nil
		}
		out.Claimed = h == holder
		return nil
	})
	if err != nil {
		return timestamp.RenewalClaim{}, mapErr("store: claiming the renewal of TSA unit "+previous, err)
	}
	return out, nil
}

// CompleteRenewal records next as the unit that replaced previous. It
// fails when holder does not hold the claim (it lapsed and another
// instance took it over) or the renewal is already recorded.
func (r *TSAUnitRenewals) CompleteRenewal(ctx context.Context, previous, holder string, next timestamp.RenewedUnit) error {
	if next.KeyLabel == "" || len(next.Cert) == 0 || len(next.Chain) == 0 {
		return errors.New("store: a renewed TSA unit needs its key label, certificate and chain")
	}
	err := r.db.writeTx(ctx, func(t *txn) error {
		res, err := t.exec(ctx, `UPDATE renewal_claims SET key_label = ?, cert = ?, chain = ?, completed_at = ?
	WHERE subject = ? AND previous = ? AND holder = ? AND key_label IS NULL`,
			next.KeyLabel, next.Cert, next.Chain, time.Now().UnixNano(), subjectTSAUnit, previous, holder)
		if err != nil {
			return err
		}
		if n, err := res.RowsAffected(); err != nil {
			return err
		} else if n != 1 {
			return fmt.Errorf("the claim is not %s's any more", holder)
		}
		return nil
	})
	return mapErr("store: recording the renewal of TSA unit "+previous, err)
}

// ReleaseRenewal drops holder's claim on previous unless the renewal is
// recorded; releasing a claim not held changes nothing.
func (r *TSAUnitRenewals) ReleaseRenewal(ctx context.Context, previous, holder string) error {
	err := r.db.writeTx(ctx, func(t *txn) error {
		_, err := t.exec(ctx, `DELETE FROM renewal_claims WHERE subject = ? AND previous = ? AND holder = ? AND key_label IS NULL`,
			subjectTSAUnit, previous, holder)
		return err
	})
	return mapErr("store: releasing the claim to renew TSA unit "+previous, err)
}
