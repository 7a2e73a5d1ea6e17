package store

import (
	"context"
	"database/sql"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/thiqa/thiqa/internal/audit"
)

// The store runs `thiqa audit find`'s searches.
var _ audit.RecordFinder = (*DB)(nil)

// FindAuditRecords implements audit.RecordFinder: every condition of q,
// ordered by seq and cut at q.Limit.
//
// A search by object, actor or action reads the index on (object, seq),
// (actor, seq) or (action, seq) (migrations 0011, 0018, 0030) in seq
// order and stops at the limit (see findQuery). A search by time (since,
// until or both; with an outcome or a first seq, but no object, actor,
// action or seq) reads, in rounds (findByWindow), the newest (or the
// oldest) records and the window's entries of the index on (at_unix_ns,
// seq) (migration 0031), more of both each round, until the first give
// the limit or the second the whole window, whose lowest and highest seqs
// bound a walk of the primary key: the cost of the shorter of the two,
// the window or the walk to it, not of the log. Nodes' clocks differ, so
// times are only roughly in seq order: the range is the lowest and the
// highest seq found, not the seqs of the first and last times, and the
// answer is the one of the plain walk. Outcome or seqs alone walk the
// primary key from the newest (or the oldest) record, each record tested,
// until the limit is reached (docs/operations.md, "Finding audit records",
// has the figures).
func (db *DB) FindAuditRecords(ctx context.Context, q audit.Query) ([]audit.Record, error) {
	if !byWindow(q) {
		s, args := findQuery(db.dialect, q)
		return db.findRecords(ctx, s, args)
	}
	if q.Limit <= 0 || q.Limit > maxRoundsLimit {
		s, args := findWindowQuery(db.dialect, q)
		return db.findRecords(ctx, s, args)
	}
	return db.findByWindow(ctx, q)
}

// findByWindow answers a search by time (byWindow, a limit from 1 to
// maxRoundsLimit) in rounds, in one read-only transaction (one snapshot:
// a record appended or archived meanwhile is in all of its reads or in
// none). Each round
// reads n of the records at the start of q's walk (findProbeQuery): when
// the limit matches among them, that is the answer. Otherwise it reads
// at most findWindowEntries(n) of the window's index entries
// (findSpanQuery): when that is all of them, their lowest and highest
// seqs bound the walk (findRangeQuery), which is the answer. Otherwise n
// grows findGrowth times and the next round runs.
//
// Either read alone can cost the whole log: the walk for a window far
// from the start of q's order (a day in the past, newest first), the
// index for a wide window near it (--until an hour ago, newest first:
// everything before it). Both grown together, the search costs a few
// times the cheaper of the two, never both whole.
//
// A search whose connection was lost runs again, as query's reads do.
func (db *DB) findByWindow(ctx context.Context, q audit.Query) ([]audit.Record, error) {
	for attempt := 1; ; attempt++ {
		out, err := db.findByWindowOnce(ctx, q)
		if err == nil || !isConnLost(err) || attempt == maxReadAttempts || !db.pauseAfterConnLost(ctx, attempt, err) {
			return out, err
		}
	}
}

// findByWindowOnce is one attempt of findByWindow.
func (db *DB) findByWindowOnce(ctx context.Context, q audit.Query) ([]audit.Record, error) {
	opts := &sql.TxOptions{ReadOnly: true}
	if db.dialect == DriverPostgres {
		opts.Isolation = sql.LevelRepeatableRead
	}
	tx, err := db.r.BeginTx(ctx, opts)
	if err != nil {
		return nil, mapErr("store: searching the audit log", err)
	}
	defer func() { _ = tx.Rollback() }()
	for n := findProbeRows(q.Limit); ; n *= findGrowth {
		s, args := findProbeQuery(q, n)
		out, err := db.findRecordsIn(ctx, tx, s, args)
		if err != nil || len(out) >= q.Limit {
			return out, err
		}
		s, args = findSpanQuery(q, findWindowEntries(n))
		var entries int
		var lo, hi sql.NullInt64
		if err := tx.QueryRowContext(ctx, db.rebind(s), args...).Scan(&entries, &lo, &hi); err != nil {
			return nil, mapErr("store: searching the audit log", err)
		}
		switch {
		case entries > findWindowEntries(n):
			continue
		case entries == 0:
			return nil, nil
		}
		s, args = findRangeQuery(db.dialect, q, lo.Int64, hi.Int64)
		return db.findRecordsIn(ctx, tx, s, args)
	}
}

// findRecords runs one of FindAuditRecords' statements.
func (db *DB) findRecords(ctx context.Context, s string, args []any) ([]audit.Record, error) {
	rows, err := db.query(ctx, s, args...)
	if err != nil {
		return nil, mapErr("store: searching the audit log", err)
	}
	return scanFound(rows)
}

// findRecordsIn runs one of findByWindow's statements in its transaction.
func (db *DB) findRecordsIn(ctx context.Context, tx *sql.Tx, s string, args []any) ([]audit.Record, error) {
	rows, err := tx.QueryContext(ctx, db.rebind(s), args...)
	if err != nil {
		return nil, mapErr("store: searching the audit log", err)
	}
	return scanFound(rows)
}

// scanFound reads the records of one of FindAuditRecords' statements.
func scanFound(rows *sql.Rows) ([]audit.Record, error) {
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
	where, args := findWhere(q, true, "at_unix_ns")
	order := findOrder(q)
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
		where = append(where, "action = ?")
		args = append(args, q.Actions[0])
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

// findWhere returns the conditions of q but its actions, and their
// arguments: the seqs with withSeqs, the time as at (the column, or an
// expression of it that keeps a planner off its index).
func findWhere(q audit.Query, withSeqs bool, at string) ([]string, []any) {
	var where []string
	var args []any
	cond := func(c string, v any) {
		where = append(where, c)
		args = append(args, v)
	}
	if withSeqs && q.Seq > 0 {
		cond("seq = ?", q.Seq)
	}
	if withSeqs && q.FromSeq > 0 {
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
		cond(at+" >= ?", q.Since.UnixNano())
	}
	if !q.Until.IsZero() {
		cond(at+" < ?", q.Until.UnixNano())
	}
	return where, args
}

// findOrder is the ORDER BY of q's order.
func findOrder(q audit.Query) string {
	if q.OldestFirst {
		return " ORDER BY seq"
	}
	return " ORDER BY seq DESC"
}

// byWindow reports whether FindAuditRecords reads q's records by their
// time: since or until, and no object, actor, action or seq (which have
// their indexes).
func byWindow(q audit.Query) bool {
	return (!q.Since.IsZero() || !q.Until.IsZero()) && q.Object == "" && q.Actor == "" && q.Seq == 0 && len(q.Actions) == 0
}

// maxRoundsLimit is the largest limit findByWindow answers (audit.Find
// asks one more record than its limit, at most audit.MaxFindLimit); a
// larger one, which only a direct caller can give, is answered by the one
// statement of findWindowQuery. The rounds' sizes grow from 4 times the
// limit: for a limit near the int's range they overflowed, and a round of
// none (n wrapped to 0) read no record and one index entry for ever.
const maxRoundsLimit = audit.MaxFindLimit + 1

// findProbeRows is how many of the newest (or oldest) records a search by
// time reads first, for a limit: a few hundred microseconds on either
// database, against the read of the window's index entries.
func findProbeRows(limit int) int { return 1000 + 4*limit }

// findGrowth is how many times more records and index entries each round
// of findByWindow reads than the round before.
const findGrowth = 4

// findWindowEntries is how many of the window's index entries a round of
// findByWindow reads, at most, for n records read at the start of the
// walk: an index entry (a time and a seq) costs a fraction of a record
// (a fourth on PostgreSQL, a tenth on SQLite: docs/benchmarks.md,
// "Finding audit records by time"), so a window of a day in the past of
// a busy log is read whole in the second round.
func findWindowEntries(n int) int { return 16 * n }

// findProbeQuery returns the statement that reads q's records among the n
// newest (or oldest, from q.FromSeq) records, in q's order, cut at
// q.Limit. The limit-th match found among them is the limit-th of the
// log: when that many match, they are FindAuditRecords' answer.
func findProbeQuery(q audit.Query, n int) (string, []any) {
	order := findOrder(q)
	inner := "SELECT " + findColumns + " FROM audit_log"
	var args []any
	if q.FromSeq > 0 {
		inner += " WHERE seq >= ?"
		args = append(args, q.FromSeq)
	}
	inner += order + " LIMIT ?"
	args = append(args, n)
	where, wargs := findWhere(q, false, "at_unix_ns")
	s := "SELECT " + findColumns + " FROM (" + inner + ") AS p"
	if len(where) > 0 {
		s += " WHERE " + strings.Join(where, " AND ")
	}
	return s + order + " LIMIT ?", append(append(args, wargs...), q.Limit)
}

// findSpanQuery returns the statement that reads at most most+1 of the
// index entries of q's window (on (at_unix_ns, seq), in time order) and
// answers how many it read, their lowest and their highest seq. When it
// read most or fewer, they are all of the window's: every record whose
// time is in the window has a seq between those two, whatever the order
// of times across seqs (nodes' clocks differ).
func findSpanQuery(q audit.Query, most int) (string, []any) {
	tw, targs := findWhere(audit.Query{Since: q.Since, Until: q.Until}, false, "at_unix_ns")
	return "SELECT count(*), min(seq), max(seq) FROM (SELECT seq FROM audit_log WHERE " + strings.Join(tw, " AND ") +
		" ORDER BY at_unix_ns LIMIT ?) AS w", append(targs, most+1)
}

// findRangeQuery returns the statement that walks the primary key in q's
// order between seqs lo and hi (both included), with every condition of
// q, cut at q.Limit; the time read as in findWindowQuery.
func findRangeQuery(dialect string, q audit.Query, lo, hi int64) (string, []any) {
	w, wargs := findWhere(q, true, findAt(dialect))
	where := append([]string{"seq >= ?", "seq <= ?"}, w...)
	args := append([]any{lo, hi}, wargs...)
	return "SELECT " + findColumns + " FROM audit_log WHERE " + strings.Join(where, " AND ") + findOrder(q) + " LIMIT ?", append(args, q.Limit)
}

// findAt is the time column in a walk of the primary key: +at_unix_ns
// (SQLite) or at_unix_ns + 0 (PostgreSQL), which keeps the planner off the
// index on time (see findWindowQuery).
func findAt(dialect string) string {
	if dialect == DriverSQLite {
		return "+at_unix_ns"
	}
	return "at_unix_ns + 0"
}

// findWindowQuery returns the statement of a search by time (byWindow)
// without a limit (below 1; SQLite then returns every record) or with one
// above maxRoundsLimit, in one statement: the primary key walked in q's
// order, with every condition of q, between the lowest seq of the
// records of the window (since given) and the highest (until given),
// each read from the index on (at_unix_ns, seq).
// A one-sided window bounds one side: past the other, the records are
// the log's head (since) or its start (until), in the window anyway.
//
// Each bound is min(seq + 0) or max(seq + 0): on min(seq) or max(seq)
// both planners may walk the primary key from an end until the first
// record in the window (SQLite does so without statistics; PostgreSQL
// does when it takes time and seq for independent), the whole log before
// a window in the past. In the walk, the time is read as +at_unix_ns
// (SQLite) or at_unix_ns + 0 (PostgreSQL), which keeps the planner off
// the index on time: read through it, every record of the window would
// be read and sorted, where the walk stops at the limit.
func findWindowQuery(dialect string, q audit.Query) (string, []any) {
	at := findAt(dialect)
	tw, targs := findWhere(audit.Query{Since: q.Since, Until: q.Until}, false, "at_unix_ns")
	bound := "(SELECT %s(seq + 0) FROM audit_log WHERE " + strings.Join(tw, " AND ") + ")"
	var where []string
	var args []any
	if !q.Since.IsZero() {
		where = append(where, "seq >= "+fmt.Sprintf(bound, "min"))
		args = append(args, targs...)
	}
	if !q.Until.IsZero() {
		where = append(where, "seq <= "+fmt.Sprintf(bound, "max"))
		args = append(args, targs...)
	}
	w, wargs := findWhere(q, true, at)
	where = append(where, w...)
	args = append(args, wargs...)
	return "SELECT " + findColumns + " FROM audit_log WHERE " + strings.Join(where, " AND ") + findOrder(q) + " LIMIT ?", append(args, q.Limit)
}
