package store

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/thiqa/thiqa/ca"
)

// Trail implements ca.TrailReader: the audit records whose object is one
// of objects (a certificate's serial, its credential ID), newest first, at
// most limit.
//
// Each object is read on its own, newest first through the index
// audit_log_object (migration 0011), at most limit records, and the
// answers are merged: the work is bounded by limit × len(objects) however
// many records an object has. (One "object IN (…) ORDER BY seq DESC"
// cannot walk the index in seq order across two objects, so both
// databases read and sorted every record of both: half a million for an
// organisation's seal credential in a log of 10 million.)
func (db *DB) Trail(ctx context.Context, objects []string, limit int) ([]ca.TrailEntry, error) {
	if len(objects) == 0 || limit <= 0 {
		return nil, nil
	}
	objects = slices.Compact(slices.Sorted(slices.Values(objects)))
	q, args := trailQuery(objects, limit)
	rows, err := db.query(ctx, q, args...)
	if err != nil {
		return nil, mapErr("store: reading the audit trail", err)
	}
	defer rows.Close()
	var out []ca.TrailEntry
	for rows.Next() {
		var e ca.TrailEntry
		var ns int64
		var details []byte
		if err := rows.Scan(&e.Seq, &ns, &e.Actor, &e.Action, &e.Object, &e.Outcome, &details); err != nil {
			return nil, mapErr("store: reading the audit trail", err)
		}
		e.Time = time.Unix(0, ns).UTC()
		if len(details) > 0 && string(details) != "null" {
			e.Details = details
		}
		out = append(out, e)
	}
	return out, mapErr("store: reading the audit trail", rows.Err())
}

// trailColumns are the columns Trail reads.
const trailColumns = "seq, at_unix_ns, actor, action, object, outcome, details"

// trailQuery returns Trail's statement and arguments: per object, its
// newest limit records by the index on (object, seq), merged newest first.
func trailQuery(objects []string, limit int) (string, []any) {
	var b strings.Builder
	args := make([]any, 0, 2*len(objects)+1)
	b.WriteString("SELECT " + trailColumns + " FROM (")
	for i, o := range objects {
		if i > 0 {
			b.WriteString(" UNION ALL ")
		}
		fmt.Fprintf(&b, "SELECT * FROM (SELECT %s FROM audit_log WHERE object = ? ORDER BY seq DESC LIMIT ?) AS o%d", trailColumns, i)
		args = append(args, o, limit)
	}
	b.WriteString(") AS t ORDER BY seq DESC LIMIT ?")
	return b.String(), append(args, limit)
}
