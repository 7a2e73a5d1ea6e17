package store

import (
	"context"
	"database/sql"
	"time"
)

// LiveUntil returns the latest notAfter among the certificates issuer ca
// has issued, leaving out those of profile except (its own OCSP
// responders, which it certifies for as long as it runs), and false when
// there is none. A CA generation rolled over stops signing CRLs and OCSP
// answers once that time has passed: no certificate of its can still be
// checked.
func (c *Certificates) LiveUntil(ctx context.Context, ca, except string) (time.Time, bool, error) {
	var last sql.NullInt64
	err := c.db.queryRow(ctx, `SELECT MAX(not_after) FROM certificates WHERE ca = ? AND state = 'issued' AND profile <> ?`, ca, except).Scan(&last)
	if err != nil {
		return time.Time{}, false, mapErr("store: reading the certificates of "+ca, err)
	}
	if !last.Valid {
		return time.Time{}, false, nil
	}
	return time.Unix(last.Int64, 0).UTC(), true, nil
}
