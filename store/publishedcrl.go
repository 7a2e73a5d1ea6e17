package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math/big"
	"time"

	"github.com/thiqa/thiqa/ca/crl"
)

// The nodes of a cluster publish their CRLs through the store.
var _ crl.SharedStore = (*PublishedCRLs)(nil)

// A `thiqa serve` alone (SQLite) records its CRLs through the store too.
var _ crl.Memory = (*PublishedCRLs)(nil)

// PublishedCRLs keeps the CRLs that the `thiqa serve` nodes sharing this
// database serve, over the published_crls table, and the locks under which
// one of them signs a CA's CRLs.
//
// Its Exclusive is DB.Exclusive, whose fn must not write through the store
// on SQLite (the lock is the database's write lock): share it between
// publishers on PostgreSQL only. A PostgreSQL pool needs two connections
// or more (the lock holds one while the CRLs are signed).
type PublishedCRLs struct {
	db *DB
}

// PublishedCRLs returns the store of the CRLs the nodes serve.
func (db *DB) PublishedCRLs() *PublishedCRLs { return &PublishedCRLs{db: db} }

// Exclusive runs fn under the database's exclusive lock named name
// (DB.Exclusive).
func (s *PublishedCRLs) Exclusive(ctx context.Context, name string, fn func(ctx context.Context) error) error {
	return s.db.Exclusive(ctx, name, fn)
}

// crlNumberDigits is the width CRL numbers are padded to: 2^160 has 49
// decimal digits.
const crlNumberDigits = 49

// numberKey is n as zero-padded decimal text, which orders as n does.
func numberKey(n *big.Int) (string, error) {
	if n == nil || n.Sign() < 0 || n.BitLen() > 160 {
		return "", fmt.Errorf("store: CRL number %v outside [0, 2^160)", n)
	}
	return fmt.Sprintf("%0*s", crlNumberDigits, n.String()), nil
}

func parseNumberKey(s string) (*big.Int, error) {
	n, ok := new(big.Int).SetString(s, 10)
	if !ok {
		return nil, fmt.Errorf("store: bad CRL number %q", s)
	}
	return n, nil
}

const publishedHeadColumns = `ca, crl_partition, fingerprint, serve_from,
	complete_number, complete_this_update, complete_next_update, complete_entries,
	delta_number, delta_this_update, delta_next_update, delta_entries`

// scanPublished reads publishedHeadColumns and, with der, the two DER
// columns after them.
func scanPublished(sc interface{ Scan(...any) error }, der bool) (*crl.Published, error) {
	var (
		p                       crl.Published
		serveFrom, cThis, cNext int64
		cNumber                 string
		cEntries                int
		dNumber                 sql.NullString
		dThis, dNext, dEntries  sql.NullInt64
		completeDER, deltaDER   []byte
		dest                    = []any{&p.Issuer, &p.Partition, &p.Fingerprint, &serveFrom, &cNumber, &cThis, &cNext, &cEntries, &dNumber, &dThis, &dNext, &dEntries}
	)
	if der {
		dest = append(dest, &completeDER, &deltaDER)
	}
	if err := sc.Scan(dest...); err != nil {
		return nil, err
	}
	p.ServeFrom = time.Unix(0, serveFrom).UTC()
	n, err := parseNumberKey(cNumber)
	if err != nil {
		return nil, err
	}
	p.Complete = &crl.CRL{Name: crl.FileName(p.Issuer, p.Partition), Issuer: p.Issuer, Partition: p.Partition, Number: n,
		ThisUpdate: time.Unix(cThis, 0).UTC(), NextUpdate: time.Unix(cNext, 0).UTC(), Entries: cEntries, DER: completeDER}
	if dNumber.Valid {
		dn, err := parseNumberKey(dNumber.String)
		if err != nil {
			return nil, err
		}
		p.Delta = &crl.CRL{Name: crl.DeltaFileName(p.Issuer, p.Partition), Issuer: p.Issuer, Partition: p.Partition, Number: dn,
			ThisUpdate: time.Unix(dThis.Int64, 0).UTC(), NextUpdate: time.Unix(dNext.Int64, 0).UTC(), Entries: int(dEntries.Int64),
			BaseNumber: new(big.Int).Set(n), DER: deltaDER}
	}
	return &p, nil
}

// PublishedHeads returns the newest pair of each partition of issuer,
// without their DER, by partition.
func (s *PublishedCRLs) PublishedHeads(ctx context.Context, issuer string) ([]*crl.Published, error) {
	rows, err := s.db.query(ctx, `SELECT `+publishedHeadColumns+` FROM published_crls WHERE ca = ? ORDER BY crl_partition`, issuer)
	if err != nil {
		return nil, mapErr("store: reading the published CRLs of "+issuer, err)
	}
	defer rows.Close()
	var out []*crl.Published
	for rows.Next() {
		p, err := scanPublished(rows, false)
		if err != nil {
			return nil, mapErr("store: reading the published CRLs of "+issuer, err)
		}
		out = append(out, p)
	}
	return out, mapErr("store: reading the published CRLs of "+issuer, rows.Err())
}

// PublishedCRL returns the newest pair of one partition with its DER,
// leaving out the complete CRL's (nil) when its number is skipComplete;
// (nil, nil) when none is stored. The pair is read in one statement, so
// its delta is always relative to its complete CRL.
func (s *PublishedCRLs) PublishedCRL(ctx context.Context, issuer string, partition int, skipComplete *big.Int) (*crl.Published, error) {
	skip := ""
	if skipComplete != nil {
		k, err := numberKey(skipComplete)
		if err != nil {
			return nil, err
		}
		skip = k
	}
	p, err := scanPublished(s.db.queryRow(ctx, `SELECT `+publishedHeadColumns+`,
	CASE WHEN complete_number = ? THEN NULL ELSE complete_der END, delta_der
	FROM published_crls WHERE ca = ? AND crl_partition = ?`, skip, issuer, partition), true)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, mapErr(fmt.Sprintf("store: reading the published CRL of %s partition %d", issuer, partition), err)
	}
	return p, nil
}

// SavePublished stores p as its partition's newest pair unless the stored
// pair is as new or newer (its complete CRL's number higher, or the same
// with a delta as new), then an error wrapping crl.ErrNotNewer.
func (s *PublishedCRLs) SavePublished(ctx context.Context, p *crl.Published) error {
	if p == nil || p.Complete == nil || len(p.Complete.DER) == 0 || p.Issuer == "" || p.Fingerprint == "" {
		return errors.New("store: a published CRL needs its issuer, fingerprint and complete CRL")
	}
	c := p.Complete
	cn, err := numberKey(c.Number)
	if err != nil {
		return err
	}
	var dn sql.NullString
	var dThis, dNext, dEntries sql.NullInt64
	var dDER []byte
	if d := p.Delta; d != nil {
		if len(d.DER) == 0 || d.BaseNumber == nil || d.BaseNumber.Cmp(c.Number) != 0 {
			return errors.New("store: a published delta CRL must have the complete CRL stored with it as its base")
		}
		k, err := numberKey(d.Number)
		if err != nil {
			return err
		}
		dn = sql.NullString{String: k, Valid: true}
		dThis = sql.NullInt64{Int64: d.ThisUpdate.Unix(), Valid: true}
		dNext = sql.NullInt64{Int64: d.NextUpdate.Unix(), Valid: true}
		dEntries = sql.NullInt64{Int64: int64(d.Entries), Valid: true}
		dDER = d.DER
	}
	var n int64
	err = s.db.writeTx(ctx, func(t *txn) error {
		res, err := t.exec(ctx, `INSERT INTO published_crls (ca, crl_partition, fingerprint, serve_from,
	complete_number, complete_this_update, complete_next_update, complete_entries, complete_der,
	delta_number, delta_this_update, delta_next_update, delta_entries, delta_der)
	VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
	ON CONFLICT (ca, crl_partition) DO UPDATE SET fingerprint = excluded.fingerprint, serve_from = excluded.serve_from,
	complete_number = excluded.complete_number, complete_this_update = excluded.complete_this_update,
	complete_next_update = excluded.complete_next_update, complete_entries = excluded.complete_entries,
	complete_der = excluded.complete_der, delta_number = excluded.delta_number,
	delta_this_update = excluded.delta_this_update, delta_next_update = excluded.delta_next_update,
	delta_entries = excluded.delta_entries, delta_der = excluded.delta_der
	WHERE published_crls.complete_number < excluded.complete_number
	OR (published_crls.complete_number = excluded.complete_number
	    AND COALESCE(published_crls.delta_number, '') < COALESCE(excluded.delta_number, ''))`,
			p.Issuer, p.Partition, p.Fingerprint, p.ServeFrom.UnixNano(), cn, c.ThisUpdate.Unix(), c.NextUpdate.Unix(), c.Entries, c.DER,
			dn, dThis, dNext, dEntries, dDER)
		if err != nil {
			return err
		}
		n, err = res.RowsAffected()
		return err
	})
	if err != nil {
		return mapErr(fmt.Sprintf("store: saving the published CRL of %s partition %d", p.Issuer, p.Partition), err)
	}
	if n == 0 {
		return fmt.Errorf("store: published CRL %s number %s: %w", c.Name, c.Number, crl.ErrNotNewer)
	}
	return nil
}

// SaveDelta replaces the delta of the stored pair whose complete CRL is
// d's base, and the pair's serve_from; when the stored complete CRL is
// another one or the stored delta is as new or newer, it changes nothing
// and returns an error wrapping crl.ErrNotNewer.
func (s *PublishedCRLs) SaveDelta(ctx context.Context, d *crl.CRL, serveFrom time.Time) error {
	if d == nil || len(d.DER) == 0 || d.BaseNumber == nil {
		return errors.New("store: a published delta CRL needs its DER and base")
	}
	base, err := numberKey(d.BaseNumber)
	if err != nil {
		return err
	}
	num, err := numberKey(d.Number)
	if err != nil {
		return err
	}
	var n int64
	err = s.db.writeTx(ctx, func(t *txn) error {
		res, err := t.exec(ctx, `UPDATE published_crls SET delta_number = ?, delta_this_update = ?, delta_next_update = ?,
	delta_entries = ?, delta_der = ?, serve_from = ?
	WHERE ca = ? AND crl_partition = ? AND complete_number = ? AND (delta_number IS NULL OR delta_number < ?)`,
			num, d.ThisUpdate.Unix(), d.NextUpdate.Unix(), d.Entries, d.DER, serveFrom.UnixNano(), d.Issuer, d.Partition, base, num)
		if err != nil {
			return err
		}
		n, err = res.RowsAffected()
		return err
	})
	if err != nil {
		return mapErr(fmt.Sprintf("store: saving the published delta CRL of %s partition %d", d.Issuer, d.Partition), err)
	}
	if n == 0 {
		return fmt.Errorf("store: published delta CRL %s number %s: %w", d.Name, d.Number, crl.ErrNotNewer)
	}
	return nil
}
