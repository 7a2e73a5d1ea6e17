package store

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/thiqa/thiqa/internal/audit"
)

// The store runs `thiqa audit find`'s searches.
var _ audit.RecordFinder = (*DB)(nil)

// FindAuditRecords implements audit.RecordFinder: one statement with
// every condition of q, ordered by seq and cut at q.Limit.
//
// A search by object, actor or action reads the index on (object, seq),
// (actor, seq) or (action, seq) (migrations 0011, 0018, 0030) in seq
// order and stops at the limit (see findQuery); otherwise (time,
// outcome, seqs alone) the primary key is walked in q's order from the
// newest (or the oldest) record, each record tested, until the limit is
// reached (docs/operations.md, "Finding audit records", has the figures).
func (db *DB) FindAuditRecords(ctx context.Context, q audit.Query) ([]audit.Record, error) {
	s, args := findQuery(db.dialect, q)
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

// findColumns are the columns FindAuditRecords reads.
const findColumns = "seq, at_unix_ns, actor, action, object, outcome, details, prev_hash, hash"

// findQuery returns FindAuditRecords' statement and arguments for the
// dialect.
//
// By object or actor (or seq), the action is a filter on that index's
// records: on SQLite written +action, which keeps the planner (which has
// no statistics) off the index on (action, seq) (migration 0030) for a
// frequent action. Without them, one action reads its index in seq order;
// several are read each on its own, at most limit records, and merged (as
// Trail does for objects: one "action IN (…) ORDER BY seq" would read and
// sort every record of every action named).
func findQuery(dialect string, q audit.Query) (string, []any) {
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
	order := " ORDER BY seq DESC"
	if q.OldestFirst {
		order = " ORDER BY seq"
	}
	byIndex := q.Object != "" || q.Actor != "" || q.Seq > 0
	switch {
	case len(q.Actions) == 0:
	case byIndex:
		col := "action"
		if dialect == DriverSQLite {
			col = "+action"
		}
		where = append(where, col+" IN (?"+strings.Repeat(", ?", len(q.Actions)-1)+")")
		for _, a := range q.Actions {
			args = append(args, a)
		}
	case len(q.Actions) == 1:
		cond("action = ?", q.Actions[0])
	default:
		return findActionsQuery(q, where, args, order)
	}
	var b strings.Builder
	b.WriteString("SELECT " + findColumns + " FROM audit_log")
	if len(where) > 0 {
		b.WriteString(" WHERE " + strings.Join(where, " AND "))
	}
	b.WriteString(order + " LIMIT ?")
	return b.String(), append(args, q.Limit)
}

// findActionsQuery is findQuery for several actions without an object or
// actor: per action, its first limit records in order by the index on
// (action, seq), with the other conditions where and args; merged.
func findActionsQuery(q audit.Query, where []string, args []any, order string) (string, []any) {
	actions := slices.Compact(slices.Sorted(slices.Values(q.Actions)))
	var b strings.Builder
	all := make([]any, 0, len(actions)*(len(args)+2)+1)
	b.WriteString("SELECT " + findColumns + " FROM (")
	for i, a := range actions {
		if i > 0 {
			b.WriteString(" UNION ALL ")
		}
		fmt.Fprintf(&b, "SELECT * FROM (SELECT %s FROM audit_log WHERE %s%s LIMIT ?) AS a%d",
			findColumns, strings.Join(append(slices.Clone(where), "action = ?"), " AND "), order, i)
		all = append(append(append(all, args...), a), q.Limit)
	}
	b.WriteString(") AS f" + order + " LIMIT ?")
	return b.String(), append(all, q.Limit)
}
