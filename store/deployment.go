package store

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"time"

	"github.com/thiqa/thiqa/ca/hierarchy"
)

// Deployment is the identity of the deployment a database belongs to
// (hierarchy.Deployment), recorded once.
type Deployment = hierarchy.Deployment

// rootFingerprint is the form of Deployment.RootSHA256.
var rootFingerprint = regexp.MustCompile(`^[0-9a-f]{64}$`)

// Deployment returns the recorded identity; false when none was recorded
// (a database made before identities existed, or an empty one).
func (db *DB) Deployment(ctx context.Context) (Deployment, bool, error) {
	var d Deployment
	var ns int64
	err := db.queryRow(ctx, "SELECT root_sha256, created_at FROM deployment WHERE id = 1").Scan(&d.RootSHA256, &ns)
	if err != nil {
		err = mapErr("store: reading the deployment identity", err)
		if errors.Is(err, ErrNotFound) {
			return Deployment{}, false, nil
		}
		return Deployment{}, false, err
	}
	d.CreatedAt = time.Unix(0, ns).UTC()
	return d, true, nil
}

// RecordDeployment records d as the database's identity when none is
// recorded yet, and returns the identity the database holds afterwards
// (d, or the one recorded before, which is never replaced) and whether it
// was written now. Comparing the result with d is the caller's business.
func (db *DB) RecordDeployment(ctx context.Context, d Deployment) (Deployment, bool, error) {
	if !rootFingerprint.MatchString(d.RootSHA256) {
		return Deployment{}, false, fmt.Errorf("store: deployment identity %q is not a lower-case hex SHA-256", d.RootSHA256)
	}
	if d.CreatedAt.IsZero() {
		d.CreatedAt = time.Now()
	}
	var written bool
	err := db.writeTx(ctx, func(t *txn) error {
		res, err := t.exec(ctx, `INSERT INTO deployment (id, root_sha256, created_at) VALUES (1, ?, ?) ON CONFLICT (id) DO NOTHING`,
			d.RootSHA256, d.CreatedAt.UnixNano())
		if err != nil {
			return err
		}
		n, err := res.RowsAffected()
		written = err == nil && n == 1
		return err
	})
	if err != nil {
		return Deployment{}, false, mapErr("store: recording the deployment identity", err)
	}
	have, ok, err := db.Deployment(ctx)
	if err == nil && !ok {
		return Deployment{}, false, fmt.Errorf("store: the deployment identity vanished after it was recorded: %w", ErrNotFound)
	}
	return have, written, err
}
