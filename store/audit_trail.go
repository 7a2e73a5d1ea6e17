package store

import (
	"context"
	"strings"
	"time"

	"github.com/thiqa/thiqa/ca"
)

// Trail implements ca.TrailReader: the audit records whose object is one
// of objects (a certificate's serial, its credential ID), newest first, at
// most limit. The index audit_log_object (migration 0011) keeps it a
// lookup however long the log grows.
func (db *DB) Trail(ctx context.Context, objects []string, limit int) ([]ca.TrailEntry, error) {
	if len(objects) == 0 || limit <= 0 {
		return nil, nil
	}
	args := make([]any, 0, len(objects)+1)
	for _, o := range objects {
		args = append(args, o)
	}
	args = append(args, limit)
	rows, err := db.query(ctx, `SELECT seq, at_unix_ns, actor, action, object, outcome, details FROM audit_log
WHERE object IN (?`+strings.Repeat(", ?", len(objects)-1)+`) ORDER BY seq DESC LIMIT ?`, args...)
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
