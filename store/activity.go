package store

import (
	"context"
	"database/sql"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/thiqa/thiqa/identity/activity"
)

var _ activity.Store = (*Activity)(nil)

// Activity reads a citizen's own activity (activity.Store): their
// certificates, the audit records about them or made by them, the names
// of the portals they logged in to.
type Activity struct{ db *DB }

// Activity returns the store of the citizen's activity.
func (db *DB) Activity() *Activity { return &Activity{db: db} }

// Holdings implements activity.Store: the issued certificates whose
// subject's serialNumber names civilNumber (IDCxx-<civil number>), newest
// first, at most limit, in one statement through the index
// certificates_holder (holder_civil, issued_at) (migration 0020).
//
// Certificates stored before 0020 have holder_civil NULL until the
// backfill (startHolderFill) reaches them; a node of an older release
// may still write some during an upgrade. So that the answer is right
// meanwhile, the statement also reads the issued rows still NULL, found
// by the same index (holder_civil IS NULL), narrowed by their subject
// text (LIKE, as before 0020) and checked exactly here on their
// certificate. That branch costs what the whole query cost before 0020
// while the backfill runs, and nothing once it is done: no flag to keep
// in step across nodes, and no window where a holding is missing.
func (a *Activity) Holdings(ctx context.Context, civilNumber string, limit int) ([]activity.Holding, error) {
	if civilNumber == "" || limit <= 0 {
		return nil, nil
	}
	stmt, args := holdingsQuery(civilNumber, limit)
	rows, err := a.db.query(ctx, stmt, args...)
	if err != nil {
		return nil, mapErr("store: the certificates of a citizen", err)
	}
	defer rows.Close()
	var out []activity.Holding
	for rows.Next() && len(out) < limit {
		var h activity.Holding
		var cred sql.NullString
		var holder sql.NullString
		var der []byte
		if err := rows.Scan(&h.Serial, &cred, &holder, &der); err != nil {
			return nil, mapErr("store: the certificates of a citizen", err)
		}
		if !holder.Valid && holderCivilOf(der) != civilNumber {
			continue // a row not yet backfilled whose subject only looks alike
		}
		h.CredentialID = cred.String
		out = append(out, h)
	}
	return out, mapErr("store: the certificates of a citizen", rows.Err())
}

// holdingsQuery returns Holdings' statement and arguments: the newest
// limit certificates of the holder by the index, and the candidates among
// the rows not yet backfilled, newest first. The DER is read only for the
// candidates (holder_civil NULL), which Holdings checks.
func holdingsQuery(civilNumber string, limit int) (string, []any) {
	const columns = `serial, credential_id, holder_civil, CASE WHEN holder_civil IS NULL THEN der END AS der, issued_at`
	return `SELECT serial, credential_id, holder_civil, der FROM (
	SELECT * FROM (SELECT ` + columns + ` FROM certificates
		WHERE holder_civil = ? AND state = 'issued' ORDER BY issued_at DESC, serial LIMIT ?) AS h
	UNION ALL
	SELECT ` + columns + ` FROM certificates
		WHERE holder_civil IS NULL AND state = 'issued' AND lower(subject) LIKE ? ESCAPE '\'
) AS t ORDER BY issued_at DESC, serial`, []any{civilNumber, limit, "%-" + likeEscape(strings.ToLower(civilNumber)) + "%"}
}

// ActivityRecords implements activity.Store in one statement: for each
// object and each actor its newest records below q.Before, through the
// index audit_log_object (object, seq) or audit_log_actor (actor, seq)
// (migration 0018), each bounded by q.Limit, merged newest first. A
// record whose object and actor both match comes twice (never more): the
// merge keeps 2 × q.Limit rows and the duplicates are dropped here.
func (a *Activity) ActivityRecords(ctx context.Context, q activity.Query) ([]activity.Record, error) {
	if q.Limit <= 0 || len(q.Objects)+len(q.Actors) == 0 {
		return nil, nil
	}
	stmt, args := activityQuery(q)
	rows, err := a.db.query(ctx, stmt, args...)
	if err != nil {
		return nil, mapErr("store: reading a citizen's activity", err)
	}
	defer rows.Close()
	var out []activity.Record
	for rows.Next() {
		var r activity.Record
		var ns int64
		var details []byte
		if err := rows.Scan(&r.Seq, &ns, &r.Actor, &r.Action, &r.Object, &r.Outcome, &details); err != nil {
			return nil, mapErr("store: reading a citizen's activity", err)
		}
		if n := len(out); n > 0 && out[n-1].Seq == r.Seq {
			continue // the same record by its object and by its actor
		}
		r.Time = time.Unix(0, ns).UTC()
		if len(details) > 0 && string(details) != "null" {
			r.Details = details
		}
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		return nil, mapErr("store: reading a citizen's activity", err)
	}
	if len(out) > q.Limit {
		out = out[:q.Limit]
	}
	return out, nil
}

// activityQuery returns ActivityRecords' statement and arguments: per
// object and per actor, its newest q.Limit records below q.Before by its
// index, merged newest first (at most 2 × q.Limit rows: a record is
// matched by one object and one actor at most).
func activityQuery(q activity.Query) (string, []any) {
	before := q.Before
	if before <= 0 {
		before = 1<<63 - 1
	}
	objects := slices.Compact(slices.Sorted(slices.Values(q.Objects)))
	actors := slices.Compact(slices.Sorted(slices.Values(q.Actors)))
	var b strings.Builder
	args := make([]any, 0, 3*(len(objects)+len(actors))+1)
	b.WriteString("SELECT " + trailColumns + " FROM (")
	i := 0
	branch := func(column, value string) {
		if i > 0 {
			b.WriteString(" UNION ALL ")
		}
		fmt.Fprintf(&b, "SELECT * FROM (SELECT %s FROM audit_log WHERE %s = ? AND seq < ? ORDER BY seq DESC LIMIT ?) AS b%d", trailColumns, column, i)
		args = append(args, value, before, q.Limit)
		i++
	}
	for _, o := range objects {
		branch("object", o)
	}
	for _, a := range actors {
		branch("actor", a)
	}
	b.WriteString(") AS t ORDER BY seq DESC LIMIT ?")
	return b.String(), append(args, 2*q.Limit)
}

// ClientNames implements activity.Store: the registered names of the
// OpenID Connect clients among ids.
func (a *Activity) ClientNames(ctx context.Context, ids []string) (map[string]string, error) {
	ids = slices.Compact(slices.Sorted(slices.Values(ids)))
	out := make(map[string]string, len(ids))
	if len(ids) == 0 {
		return out, nil
	}
	args := make([]any, len(ids))
	for i, id := range ids {
		args[i] = id
	}
	rows, err := a.db.query(ctx, `SELECT id, name FROM oidc_clients WHERE id IN (?`+strings.Repeat(", ?", len(ids)-1)+`)`, args...)
	if err != nil {
		return nil, mapErr("store: the names of clients", err)
	}
	defer rows.Close()
	for rows.Next() {
		var id, name string
		if err := rows.Scan(&id, &name); err != nil {
			return nil, mapErr("store: the names of clients", err)
		}
		out[id] = name
	}
	return out, mapErr("store: the names of clients", rows.Err())
}
