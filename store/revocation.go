package store

import (
	"context"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"math/big"
	"time"

	"github.com/thiqa/thiqa/ca/crl"
	"github.com/thiqa/thiqa/ca/ocsp"
	"github.com/thiqa/thiqa/ca/revocation"
	"github.com/thiqa/thiqa/internal/audit"
)

// The revocation store feeds the CRL generator and the OCSP responder.
var (
	_ crl.NumberSource  = (*Revocations)(nil)
	_ crl.RevokedSource = (*Revocations)(nil)
	_ crl.DeltaSource   = (*Revocations)(nil)
	_ ocsp.StatusSource = (*Revocations)(nil)
	_ revocation.Store  = (*Revocations)(nil)
)

// Revocations is the revocation store over the revocations and crl_numbers
// tables, read together with the certificates table.
type Revocations struct {
	db *DB
}

// Revocations returns the revocation store.
func (db *DB) Revocations() *Revocations { return &Revocations{db: db} }

// SerialKey is the form serials take in the store: the lower-case hex of
// the serial's big-endian magnitude (two digits per byte).
func SerialKey(serial *big.Int) string { return hex.EncodeToString(serial.Bytes()) }

// ErrBadReason is returned for a reason code Thiqa never records
// (certificateHold, removeFromCRL, unassigned values).
var ErrBadReason = errors.New("store: revocation reason not allowed")

// Revoke records the final revocation of an issued certificate, now
// (truncated to whole seconds). It returns an error wrapping ErrNotFound
// and revocation.ErrNotFound when no certificate with that serial was
// issued, ErrConflict and revocation.ErrAlreadyRevoked when it is already
// revoked, ErrBadReason for a reason Thiqa does not record; in each case
// nothing changed. The audit records rec gives (nil: none) are sealed into
// the chain in the same transaction: an error from rec or the append rolls
// the revocation back. A keyCompromise revocation also blocks the key and
// revokes every certificate with it (CompromiseKey).
func (r *Revocations) Revoke(ctx context.Context, serial string, reason int, by string, now time.Time, rec revocation.Records) (*revocation.Revocation, error) {
	if reason == crl.ReasonKeyCompromise {
		kc, err := r.compromise(ctx, serial, by, now, true, rec)
		if kc == nil {
			return nil, err
		}
		return &kc.Revocation, err
	}
	key, err := revocation.NormalizeSerial(serial)
	if err != nil {
		return nil, fmt.Errorf("store: revoking: %w: %w: %v", revocation.ErrNotFound, ErrNotFound, err)
	}
	if !crl.ValidReason(reason) {
		return nil, fmt.Errorf("store: revoking %s: %w: code %d", key, ErrBadReason, reason)
	}
	if by == "" {
		return nil, errors.New("store: revoking: the revoking party is required")
	}
	var out *revocation.Revocation
	err = r.db.auditedTx(ctx, func(t *txn, records *auditInTx) error {
		out = nil
		var ca, state string
		var part int
		err := t.queryRow(ctx, `SELECT ca, state, crl_partition FROM certificates WHERE serial = ?`, key).Scan(&ca, &state, &part)
		if errors.Is(err, sql.ErrNoRows) || (err == nil && state != "issued") {
			return fmt.Errorf("store: revoking %s: %w: %w", key, revocation.ErrNotFound, ErrNotFound)
		}
		if err != nil {
			return mapErr("store: revoking "+key, err)
		}
		var n int64
		if err := t.queryRow(ctx, `SELECT count(*) FROM revocations WHERE serial = ?`, key).Scan(&n); err != nil {
			return mapErr("store: revoking "+key, err)
		}
		if n > 0 {
			return fmt.Errorf("store: revoking %s: %w: %w", key, revocation.ErrAlreadyRevoked, ErrConflict)
		}
		rv := &revocation.Revocation{Serial: key, CA: ca, Partition: part, RevokedAt: now.UTC().Truncate(time.Second),
			Reason: reason, RevokedBy: by, Recorded: time.Now().UTC()}
		if _, err := t.exec(ctx, `INSERT INTO revocations (serial, ca, crl_partition, revoked_at, reason, revoked_by, recorded_at)
	VALUES (?, ?, ?, ?, ?, ?, ?)`, key, ca, part, rv.RevokedAt.UnixNano(), reason, by, rv.Recorded.UnixNano()); err != nil {
			return mapErr("store: revoking "+key, err)
		}
		if err := records.appendAudit(ctx, t, sealer(rec, revocation.Change{Revocation: rv})); err != nil {
			return fmt.Errorf("store: recording the revocation of %s in the audit log: %w", key, err)
		}
		out = rv
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// sealer returns the function that seals rec's records of c, or that
// fails with rec's error (nil when rec is nil: nothing to record).
func sealer(rec revocation.Records, c revocation.Change) audit.Sealer {
	if rec == nil {
		return nil
	}
	seal, err := rec(c)
	if err != nil {
		return audit.SealerFunc(func(audit.Head) ([]audit.Record, error) { return nil, err })
	}
	return seal
}

const revocationColumns = `serial, ca, crl_partition, revoked_at, reason, revoked_by, recorded_at`

func scanRevocation(sc interface{ Scan(...any) error }) (*revocation.Revocation, error) {
	var rv revocation.Revocation
	var at, rec int64
	if err := sc.Scan(&rv.Serial, &rv.CA, &rv.Partition, &at, &rv.Reason, &rv.RevokedBy, &rec); err != nil {
		return nil, err
	}
	rv.RevokedAt, rv.Recorded = time.Unix(0, at).UTC(), time.Unix(0, rec).UTC()
	return &rv, nil
}

// Revocation returns the revocation of a serial, or an error wrapping
// ErrNotFound when it is not revoked.
func (r *Revocations) Revocation(ctx context.Context, serial string) (*revocation.Revocation, error) {
	key, err := revocation.NormalizeSerial(serial)
	if err != nil {
		return nil, fmt.Errorf("store: revocation: %w: %v", ErrNotFound, err)
	}
	rv, err := scanRevocation(r.db.queryRow(ctx, `SELECT `+revocationColumns+` FROM revocations WHERE serial = ?`, key))
	if err != nil {
		return nil, mapErr("store: revocation of "+key, err)
	}
	return rv, nil
}

// RecordedSince returns up to limit revocations recorded at or after since,
// oldest first: how an instance learns of revocations another process made.
func (r *Revocations) RecordedSince(ctx context.Context, since time.Time, limit int) ([]revocation.Revocation, error) {
	if limit <= 0 {
		limit = 1000
	}
	rows, err := r.db.query(ctx, `SELECT `+revocationColumns+` FROM revocations WHERE recorded_at >= ? ORDER BY recorded_at LIMIT ?`,
		since.UnixNano(), limit)
	if err != nil {
		return nil, mapErr("store: recent revocations", err)
	}
	defer rows.Close()
	var out []revocation.Revocation
	for rows.Next() {
		rv, err := scanRevocation(rows)
		if err != nil {
			return nil, mapErr("store: recent revocations", err)
		}
		out = append(out, *rv)
	}
	return out, mapErr("store: recent revocations", rows.Err())
}

// NextCRLNumber hands out the issuer's next CRL number (1, 2, …) in a write
// transaction: strictly increasing across restarts and across instances
// sharing a PostgreSQL database (the row lock orders concurrent callers).
func (r *Revocations) NextCRLNumber(ctx context.Context, issuer string) (*big.Int, error) {
	if issuer == "" {
		return nil, errors.New("store: CRL number: issuer is required")
	}
	var n int64
	err := r.db.writeTx(ctx, func(t *txn) error {
		if _, err := t.exec(ctx, `INSERT INTO crl_numbers (ca, last_number) VALUES (?, 0) ON CONFLICT (ca) DO NOTHING`, issuer); err != nil {
			return err
		}
		return t.queryRow(ctx, `UPDATE crl_numbers SET last_number = last_number + 1 WHERE ca = ? RETURNING last_number`, issuer).Scan(&n)
	})
	if err != nil {
		return nil, mapErr("store: next CRL number of "+issuer, err)
	}
	return big.NewInt(n), nil
}

// LastCRLNumber returns the last CRL number NextCRLNumber handed out for
// the issuer (0 when none): a CRL of that issuer with a higher number was
// not signed here.
func (r *Revocations) LastCRLNumber(ctx context.Context, issuer string) (*big.Int, error) {
	var n int64
	err := r.db.queryRow(ctx, `SELECT last_number FROM crl_numbers WHERE ca = ?`, issuer).Scan(&n)
	if errors.Is(err, sql.ErrNoRows) {
		return big.NewInt(0), nil
	}
	if err != nil {
		return nil, mapErr("store: last CRL number of "+issuer, err)
	}
	return big.NewInt(n), nil
}

// HighestPartition returns the highest CRL partition any certificate of the
// issuer names (0 when none is partitioned), so that every partition a
// certificate names stays published.
func (r *Revocations) HighestPartition(ctx context.Context, issuer string) (int, error) {
	var n sql.NullInt64
	if err := r.db.queryRow(ctx, `SELECT max(crl_partition) FROM certificates WHERE ca = ?`, issuer).Scan(&n); err != nil {
		return 0, mapErr("store: CRL partitions of "+issuer, err)
	}
	return int(n.Int64), nil
}

// RevokedCertificates streams the revoked certificates of one issuer's CRL
// partition in serial order (crl.RevokedSource).
func (r *Revocations) RevokedCertificates(ctx context.Context, issuer string, partition int, fn func(crl.RevokedEntry) error) error {
	rows, err := r.db.query(ctx, `SELECT serial, revoked_at, reason FROM revocations WHERE ca = ? AND crl_partition = ? ORDER BY serial`,
		issuer, partition)
	if err != nil {
		return mapErr("store: revoked certificates of "+issuer, err)
	}
	return streamRevoked(rows, issuer, fn)
}

// RevokedSince streams the revocations of one issuer's CRL partition
// recorded at or after since, in serial order (crl.DeltaSource): the
// entries of a delta CRL. The recorded_at index keeps it to the recent rows.
func (r *Revocations) RevokedSince(ctx context.Context, issuer string, partition int, since time.Time, fn func(crl.RevokedEntry) error) error {
	rows, err := r.db.query(ctx, `SELECT serial, revoked_at, reason FROM revocations
	WHERE recorded_at >= ? AND ca = ? AND crl_partition = ? ORDER BY serial`, since.UnixNano(), issuer, partition)
	if err != nil {
		return mapErr("store: recent revocations of "+issuer, err)
	}
	return streamRevoked(rows, issuer, fn)
}

// streamRevoked hands rows (serial, revoked_at, reason) to fn and closes them.
func streamRevoked(rows *sql.Rows, issuer string, fn func(crl.RevokedEntry) error) error {
	defer rows.Close()
	var key string
	var at int64
	var reason int
	for rows.Next() {
		if err := rows.Scan(&key, &at, &reason); err != nil {
			return mapErr("store: revoked certificates of "+issuer, err)
		}
		serial, err := parseKey(key)
		if err != nil {
			return err
		}
		if err := fn(crl.RevokedEntry{Serial: serial, RevokedAt: time.Unix(0, at).UTC(), Reason: reason}); err != nil {
			return err
		}
	}
	return mapErr("store: revoked certificates of "+issuer, rows.Err())
}

func parseKey(key string) (*big.Int, error) {
	n, ok := new(big.Int).SetString(key, 16)
	if !ok || n.Sign() <= 0 {
		return nil, fmt.Errorf("store: malformed serial %q in the database", key)
	}
	return n, nil
}

// Status reports a serial's OCSP status for an issuer (ocsp.StatusSource):
// good only when that issuer issued the certificate (state issued) and it is
// not revoked; revoked with time and reason; unknown otherwise (never
// issued, issued by another CA, or only an intent).
func (r *Revocations) Status(ctx context.Context, issuer string, serial *big.Int) (ocsp.Status, error) {
	if serial == nil || serial.Sign() <= 0 {
		return ocsp.Status{State: ocsp.Unknown}, nil
	}
	var ca, state string
	var at, reason sql.NullInt64
	err := r.db.queryRow(ctx, `SELECT c.ca, c.state, r.revoked_at, r.reason FROM certificates c
	LEFT JOIN revocations r ON r.serial = c.serial WHERE c.serial = ?`, SerialKey(serial)).Scan(&ca, &state, &at, &reason)
	if errors.Is(err, sql.ErrNoRows) {
		return ocsp.Status{State: ocsp.Unknown}, nil
	}
	if err != nil {
		return ocsp.Status{}, mapErr("store: status of "+SerialKey(serial), err)
	}
	return status(ca == issuer && state == "issued", at, reason), nil
}

func status(issued bool, at, reason sql.NullInt64) ocsp.Status {
	switch {
	case !issued:
		return ocsp.Status{State: ocsp.Unknown}
	case at.Valid:
		return ocsp.Status{State: ocsp.Revoked, RevokedAt: time.Unix(0, at.Int64).UTC(), Reason: int(reason.Int64)}
	}
	return ocsp.Status{State: ocsp.Good}
}

// AllStatuses streams the status of every unexpired certificate the issuer
// issued (ocsp.StatusSource), for pre-signing. The serial passed to fn is
// reused between calls.
func (r *Revocations) AllStatuses(ctx context.Context, issuer string, fn func(serial *big.Int, st ocsp.Status) error) error {
	rows, err := r.db.query(ctx, `SELECT c.serial, r.revoked_at, r.reason FROM certificates c
	LEFT JOIN revocations r ON r.serial = c.serial
	WHERE c.ca = ? AND c.state = 'issued' AND c.not_after > ?`, issuer, time.Now().Unix())
	if err != nil {
		return mapErr("store: statuses of "+issuer, err)
	}
	defer rows.Close()
	var key string
	var at, reason sql.NullInt64
	serial := new(big.Int)
	for rows.Next() {
		if err := rows.Scan(&key, &at, &reason); err != nil {
			return mapErr("store: statuses of "+issuer, err)
		}
		if _, ok := serial.SetString(key, 16); !ok {
			return fmt.Errorf("store: malformed serial %q in the database", key)
		}
		if err := fn(serial, status(true, at, reason)); err != nil {
			return err
		}
	}
	return mapErr("store: statuses of "+issuer, rows.Err())
}
