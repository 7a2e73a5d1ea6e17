package store

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math/big"
	"time"

	"github.com/thiqa/thiqa/ca/crl"
)

// The imported CRLs are the published CRLs of the offline root.
var _ crl.ImportedStore = (*ImportedCRLs)(nil)

// ImportedCRLs keeps the CRLs signed elsewhere (the offline root's) that
// this deployment publishes, over the imported_crls table.
type ImportedCRLs struct {
	db *DB
}

// ImportedCRLs returns the store of imported CRLs.
func (db *DB) ImportedCRLs() *ImportedCRLs { return &ImportedCRLs{db: db} }

// SaveImportedCRL records c as its issuer's CRL in one transaction: the
// same CRL again changes nothing; one that is not newer than the CRL kept
// is refused with an error wrapping crl.ErrNotNewer.
func (s *ImportedCRLs) SaveImportedCRL(ctx context.Context, c *crl.ImportedCRL, by string, at time.Time) error {
	if c == nil || c.Issuer == "" || len(c.DER) == 0 || by == "" {
		return errors.New("store: an imported CRL needs an issuer, its DER and who imports it")
	}
	number := ""
	if c.Number != nil {
		number = c.Number.String()
	}
	err := s.db.writeTx(ctx, func(t *txn) error {
		old, err := scanImported(t.queryRow(ctx, selectImportedSQL, c.Issuer))
		switch {
		case errors.Is(err, sql.ErrNoRows):
		case err != nil:
			return err
		case bytes.Equal(old.DER, c.DER):
			return nil
		case !c.NewerThan(old):
			return fmt.Errorf("%w: the CRL published has number %s, thisUpdate %s", crl.ErrNotNewer, numberOrNone(old.Number), old.ThisUpdate.Format(time.RFC3339))
		}
		_, err = t.exec(ctx, `DELETE FROM imported_crls WHERE issuer = ?`, c.Issuer)
		if err != nil {
			return err
		}
		_, err = t.exec(ctx, `INSERT INTO imported_crls (issuer, crl_number, this_update, next_update, entries, der, imported_by, imported_at)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?)`, c.Issuer, number, c.ThisUpdate.Unix(), c.NextUpdate.Unix(), c.Entries, c.DER, by, at.Unix())
		return err
	})
	if err != nil && !errors.Is(err, crl.ErrNotNewer) {
		return mapErr("store: saving the imported CRL of "+c.Issuer, err)
	}
	return err
}

const selectImportedSQL = `SELECT issuer, crl_number, this_update, next_update, entries, der, imported_at FROM imported_crls WHERE issuer = ?`

func numberOrNone(n *big.Int) string {
	if n == nil {
		return "none"
	}
	return n.String()
}

// ImportedCRL returns the issuer's CRL (with when it was imported), or an error wrapping
// crl.ErrNoImported (and ErrNotFound) when none was imported.
func (s *ImportedCRLs) ImportedCRL(ctx context.Context, issuer string) (*crl.ImportedCRL, error) {
	c, err := scanImported(s.db.queryRow(ctx, selectImportedSQL, issuer))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("store: %w for %s: %w", crl.ErrNoImported, issuer, ErrNotFound)
	}
	if err != nil {
		return nil, mapErr("store: reading the imported CRL of "+issuer, err)
	}
	return c, nil
}

func scanImported(row *sql.Row) (*crl.ImportedCRL, error) {
	var c crl.ImportedCRL
	var number string
	var this, next, at int64
	if err := row.Scan(&c.Issuer, &number, &this, &next, &c.Entries, &c.DER, &at); err != nil {
		return nil, err
	}
	if number != "" {
		n, ok := new(big.Int).SetString(number, 10)
		if !ok {
			return nil, fmt.Errorf("store: imported CRL of %s: bad number %q", c.Issuer, number)
		}
		c.Number = n
	}
	c.ThisUpdate, c.NextUpdate, c.ImportedAt = time.Unix(this, 0).UTC(), time.Unix(next, 0).UTC(), time.Unix(at, 0).UTC()
	return &c, nil
}
