package store

import (
	"context"

	"github.com/thiqa/thiqa/internal/audit"
)

// FindQuery exposes findQuery for tests.
var FindQuery = findQuery

// FindWindowQuery exposes findWindowQuery for tests.
var FindWindowQuery = findWindowQuery

// FindProbeQuery exposes findProbeQuery for tests.
var FindProbeQuery = findProbeQuery

// FindSpanQuery exposes findSpanQuery for tests.
var FindSpanQuery = findSpanQuery

// FindRangeQuery exposes findRangeQuery for tests.
var FindRangeQuery = findRangeQuery

// FindRecords runs one of FindAuditRecords' statements, for tests.
func (db *DB) FindRecords(ctx context.Context, s string, args []any) ([]audit.Record, error) {
	return db.findRecords(ctx, s, args)
}
