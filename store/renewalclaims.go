package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/thiqa/thiqa/ca/revocation"
	"github.com/thiqa/thiqa/timestamp"
)

// The TSA's instances coordinate unit renewals through the store, and the
// revocation publications of `thiqa serve` nodes the renewals of the
// delegated OCSP responders.
var (
	_ timestamp.UnitRenewals       = (*TSAUnitRenewals)(nil)
	_ revocation.ResponderRenewals = (*OCSPResponderRenewals)(nil)
)

// subjectTSAUnit is the renewal_claims subject of the TSA unit.
const subjectTSAUnit = "tsa-unit"

// subjectOCSPResponder starts the renewal_claims subject of an issuing
// CA's delegated OCSP responder ("ocsp-responder:citizen").
const subjectOCSPResponder = "ocsp-responder:"

// renewalClaims is the one implementation of the renewal claims over the
// renewal_claims table, for one subject (what is renewed). The renewals of
// the TSA unit and of the OCSP responders are thin adapters over it.
type renewalClaims struct {
	db      *DB
	subject string
	// name names the certificate previous in the errors ("TSA unit 01ab").
	name func(previous string) string
}

// renewalRecord is a completed renewal: the replacement's key label,
// certificate (DER) and chain (DER, concatenated; empty when the subject
// keeps none).
type renewalRecord struct {
	keyLabel    string
	cert, chain []byte
}

// claim claims the renewal of previous for holder until until, unless
// another holder's claim is live at now or the renewal is done (then it
// returns what replaced previous). The upsert and the read run in one write
// transaction: on SQLite it holds the write lock, on PostgreSQL the upsert
// locks the row, so two instances never both get the claim.
func (r renewalClaims) claim(ctx context.Context, previous, holder string, now, until time.Time) (claimed bool, next *renewalRecord, err error) {
	err = r.db.writeTx(ctx, func(t *txn) error {
		claimed, next = false, nil
		if _, err := t.exec(ctx, `INSERT INTO renewal_claims (subject, previous, holder, claimed_until) VALUES (?, ?, ?, ?)
	ON CONFLICT (subject, previous) DO UPDATE SET holder = excluded.holder, claimed_until = excluded.claimed_until
	WHERE renewal_claims.key_label IS NULL AND (renewal_claims.holder = excluded.holder OR renewal_claims.claimed_until <= ?)`,
			r.subject, previous, holder, until.UnixNano(), now.UnixNano()); err != nil {
			return err
		}
		var (
			h           string
			label       sql.NullString
			cert, chain []byte
		)
		if err := t.queryRow(ctx, `SELECT holder, key_label, cert, chain FROM renewal_claims WHERE subject = ? AND previous = ?`,
			r.subject, previous).Scan(&h, &label, &cert, &chain); err != nil {
			return err
		}
		if label.Valid {
			next = &renewalRecord{keyLabel: label.String, cert: cert, chain: chain}
			return nil
		}
		claimed = h == holder
		return nil
	})
	if err != nil {
		return false, nil, mapErr("store: claiming the renewal of "+r.name(previous), err)
	}
	return claimed, next, nil
}

// complete records next as what replaced previous. It fails when holder
// does not hold the claim (it lapsed and another instance took it over) or
// the renewal is already recorded.
func (r renewalClaims) complete(ctx context.Context, previous, holder string, next renewalRecord) error {
	var chain []byte
	if len(next.chain) > 0 {
		chain = next.chain
	}
	err := r.db.writeTx(ctx, func(t *txn) error {
		res, err := t.exec(ctx, `UPDATE renewal_claims SET key_label = ?, cert = ?, chain = ?, completed_at = ?
	WHERE subject = ? AND previous = ? AND holder = ? AND key_label IS NULL`,
			next.keyLabel, next.cert, chain, time.Now().UnixNano(), r.subject, previous, holder)
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
	return mapErr("store: recording the renewal of "+r.name(previous), err)
}

// release drops holder's claim on previous unless the renewal is recorded;
// releasing a claim not held changes nothing.
func (r renewalClaims) release(ctx context.Context, previous, holder string) error {
	err := r.db.writeTx(ctx, func(t *txn) error {
		_, err := t.exec(ctx, `DELETE FROM renewal_claims WHERE subject = ? AND previous = ? AND holder = ? AND key_label IS NULL`,
			r.subject, previous, holder)
		return err
	})
	return mapErr("store: releasing the claim to renew "+r.name(previous), err)
}

// byCert returns the completed renewal whose replacement is the
// certificate cert (DER), or nil when no renewal of the subject made it.
func (r renewalClaims) byCert(ctx context.Context, cert []byte) (*renewalRecord, error) {
	var (
		label string
		chain []byte
	)
	err := r.db.queryRow(ctx, `SELECT key_label, chain FROM renewal_claims WHERE subject = ? AND cert = ? AND key_label IS NOT NULL`,
		r.subject, cert).Scan(&label, &chain)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, mapErr("store: finding the renewal that made a certificate of "+r.subject, err)
	}
	return &renewalRecord{keyLabel: label, cert: cert, chain: chain}, nil
}

// TSAUnitRenewals records which TSA unit replaced which, and who renews a
// unit due (timestamp.UnitRenewals), over the renewal_claims table: every
// instance of the TSA sharing the database sees the same claims.
type TSAUnitRenewals struct {
	c renewalClaims
}

// TSAUnitRenewals returns the store of the TSA's unit renewals.
func (db *DB) TSAUnitRenewals() *TSAUnitRenewals {
	return &TSAUnitRenewals{c: renewalClaims{db: db, subject: subjectTSAUnit, name: func(p string) string { return "TSA unit " + p }}}
}

// ClaimRenewal claims the renewal of the unit previous for holder until
// until, unless another holder's claim is live at now or the renewal is
// done (then it returns the unit recorded); two instances never both get
// the claim.
func (r *TSAUnitRenewals) ClaimRenewal(ctx context.Context, previous, holder string, now, until time.Time) (timestamp.RenewalClaim, error) {
	if previous == "" || holder == "" {
		return timestamp.RenewalClaim{}, errors.New("store: a renewal claim needs the unit's serial and a holder")
	}
	claimed, next, err := r.c.claim(ctx, previous, holder, now, until)
	if err != nil {
		return timestamp.RenewalClaim{}, err
	}
	if next != nil {
		return timestamp.RenewalClaim{Next: &timestamp.RenewedUnit{KeyLabel: next.keyLabel, Cert: next.cert, Chain: next.chain}}, nil
	}
	return timestamp.RenewalClaim{Claimed: claimed}, nil
}

// CompleteRenewal records next as the unit that replaced previous. It
// fails when holder does not hold the claim (it lapsed and another
// instance took it over) or the renewal is already recorded.
func (r *TSAUnitRenewals) CompleteRenewal(ctx context.Context, previous, holder string, next timestamp.RenewedUnit) error {
	if next.KeyLabel == "" || len(next.Cert) == 0 || len(next.Chain) == 0 {
		return errors.New("store: a renewed TSA unit needs its key label, certificate and chain")
	}
	return r.c.complete(ctx, previous, holder, renewalRecord{keyLabel: next.KeyLabel, cert: next.Cert, chain: next.Chain})
}

// ReleaseRenewal drops holder's claim on previous unless the renewal is
// recorded; releasing a claim not held changes nothing.
func (r *TSAUnitRenewals) ReleaseRenewal(ctx context.Context, previous, holder string) error {
	return r.c.release(ctx, previous, holder)
}

// OCSPResponderRenewals records which delegated OCSP responder certificate
// replaced which, and who renews one due (revocation.ResponderRenewals),
// over the renewal_claims table (subject "ocsp-responder:<ca>"): every
// `thiqa serve` node sharing the database sees the same claims.
type OCSPResponderRenewals struct {
	db *DB
}

// OCSPResponderRenewals returns the store of the OCSP responder renewals.
func (db *DB) OCSPResponderRenewals() *OCSPResponderRenewals { return &OCSPResponderRenewals{db: db} }

// claims are the claims of caName's responder.
func (r *OCSPResponderRenewals) claims(caName string) renewalClaims {
	return renewalClaims{db: r.db, subject: subjectOCSPResponder + caName, name: func(p string) string {
		return "OCSP responder certificate " + p + " of CA " + caName
	}}
}

// ClaimRenewal claims the renewal of caName's responder certificate
// previous for holder until until, unless another holder's claim is live
// at now or the renewal is done (then it returns the responder recorded);
// two nodes never both get the claim.
func (r *OCSPResponderRenewals) ClaimRenewal(ctx context.Context, caName, previous, holder string, now, until time.Time) (revocation.ResponderClaim, error) {
	if caName == "" || previous == "" || holder == "" {
		return revocation.ResponderClaim{}, errors.New("store: a renewal claim needs the CA, the responder certificate's serial and a holder")
	}
	claimed, next, err := r.claims(caName).claim(ctx, previous, holder, now, until)
	if err != nil {
		return revocation.ResponderClaim{}, err
	}
	if next != nil {
		return revocation.ResponderClaim{Next: &revocation.RenewedResponder{KeyLabel: next.keyLabel, Cert: next.cert}}, nil
	}
	return revocation.ResponderClaim{Claimed: claimed}, nil
}

// CompleteRenewal records next as the responder that replaced previous.
// It fails when holder does not hold the claim or the renewal is already
// recorded.
func (r *OCSPResponderRenewals) CompleteRenewal(ctx context.Context, caName, previous, holder string, next revocation.RenewedResponder) error {
	if caName == "" || next.KeyLabel == "" || len(next.Cert) == 0 {
		return errors.New("store: a renewed OCSP responder needs its CA, key label and certificate")
	}
	return r.claims(caName).complete(ctx, previous, holder, renewalRecord{keyLabel: next.KeyLabel, cert: next.Cert})
}

// ReleaseRenewal drops holder's claim on previous unless the renewal is
// recorded; releasing a claim not held changes nothing.
func (r *OCSPResponderRenewals) ReleaseRenewal(ctx context.Context, caName, previous, holder string) error {
	return r.claims(caName).release(ctx, previous, holder)
}

// Recorded returns the recorded renewal of caName's responder whose
// certificate is cert (DER), or nil when no renewal recorded it.
func (r *OCSPResponderRenewals) Recorded(ctx context.Context, caName string, cert []byte) (*revocation.RenewedResponder, error) {
	rec, err := r.claims(caName).byCert(ctx, cert)
	if err != nil || rec == nil {
		return nil, err
	}
	return &revocation.RenewedResponder{KeyLabel: rec.keyLabel, Cert: rec.cert}, nil
}
