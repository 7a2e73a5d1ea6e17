package store

import (
	"context"
	"strings"
	"time"

	"github.com/thiqa/thiqa/internal/audit"
)

// The store runs `thiqa audit find`'s searches.
var _ audit.RecordFinder = (*DB)(nil)

// FindAuditRecords implements audit.RecordFinder: one statement with
// every condition of q, ordered by seq and cut at q.Limit.
//
// A search by object or actor reads the index on (object, seq) or (actor,
// seq) (migrations 0011, 0018) in seq order and stops at the limit;
// otherwise the primary key is walked in q's order from the newest (or
// the oldest) record, each record tested, until the limit is reached: a
// search for a frequent action is quick, one for a rare action reads
// every record newer than its limit-th match (see docs/operations.md,
// "Finding audit records", for the figures).
func (db *DB) FindAuditRecords(ctx context.Context, q audit.Query) ([]audit.Record, error) {
	s, args := findQuery(q)
	rows, err := db.query(ctx, s, args...)
	if err != nil {
		return nil, mapErr("store: searching the audit log", err)
	}
	defer rows.Close()
	var out []audit.Record
	for rows.Next() {
		var r audit.Record
		var ns int64
		var details []byte
		if err := rows.Scan(&r.Seq, &ns, &r.Actor, &r.Action, &r.Object, &r.Outcome, &details, &r.PrevHash, &r.Hash); err != nil {
			return nil, mapErr("store: searching the audit log", err)
		}
		r.Time = time.Unix(0, ns).UTC()
		r.Details = details
		out = append(out, r)
	}
	return out, mapErr("store: searching the audit log", rows.Err())
}

// findQuery returns FindAuditRecords' statement and arguments.
func findQuery(q audit.Query) (string, []any) {
	var where []string
	var args []any
	cond := func(c string, v any) {
		where = append(where, c)
		args = append(args, v)
	}
	if q.Seq > 0 {
		cond("seq = ?", q.Seq)
	}
	if q.FromSeq > 0 {
		cond("seq >= ?", q.FromSeq)
	}
	if q.Object != "" {
		cond("object = ?", q.Object)
	}
	if q.Actor != "" {
		cond("actor = ?", q.Actor)
	}
	if q.Outcome != "" {
		cond("outcome = ?", q.Outcome)
	}
	if !q.Since.IsZero() {
		cond("at_unix_ns >= ?", q.Since.UnixNano())
	}
	if !q.Until.IsZero() {
		cond("at_unix_ns < ?", q.Until.UnixNano())
	}
	switch len(q.Actions) {
	case 0:
	case 1:
		cond("action = ?", q.Actions[0])
	default:
		where = append(where, "action IN (?"+strings.Repeat(", ?", len(q.Actions)-1)+")")
		for _, a := range q.Actions {
			args = append(args, a)
		}
	}
	var b strings.Builder
	b.WriteString("SELECT seq, at_unix_ns, actor, action, object, outcome, details, prev_hash, hash FROM audit_log")
	if len(where) > 0 {
		b.WriteString(" WHERE " + strings.Join(where, " AND "))
	}
	if q.OldestFirst {
		b.WriteString(" ORDER BY seq")
	} else {
		b.WriteString(" ORDER BY seq DESC")
	}
	b.WriteString(" LIMIT ?")
	return b.String(), append(args, q.Limit)
}
