package store

import (
	"context"
	"fmt"
	"time"

	"github.com/thiqa/thiqa/internal/audit"
)

// The store counts the audit log for activity statistics.
var _ audit.TallyReader = (*DB)(nil)

// nsPerDay is the length of a UTC day in the log's time unit.
const nsPerDay = int64(24 * time.Hour)

// AuditTallies implements audit.TallyReader: one aggregate statement over
// the records of [from, to), grouped by action and outcome and, when daily,
// by the UTC day of their time (the integer day number, which both
// databases compute cheaply; the caller groups days into months). Each
// collective record (details beginning {"count":N,"items":[, see
// internal/audit) counts N events; any other record one. N is read from
// the details' first bytes, without parsing the JSON.
//
// The statement reads the whole table once (there is no index on time, so
// that appends pay for none); the database does the counting, so no record
// crosses to this process.
func (db *DB) AuditTallies(ctx context.Context, from, to time.Time, daily bool) ([]audit.Tally, error) {
	day := "0"
	if daily {
		day = fmt.Sprintf("at_unix_ns / %d", nsPerDay)
	}
	// The count's digits run from byte 10 to the first comma, which must
	// open ,"items":[ for the record to be collective.
	events := `CASE WHEN substr(details, 1, 9) = '{"count":' AND substr(details, instr(details, ','), 10) = ',"items":['
  THEN CAST(substr(details, 10, instr(details, ',') - 10) AS INTEGER) ELSE 1 END`
	if db.dialect == DriverPostgres {
		events = `COALESCE(substring(details from '^\{"count":([0-9]{1,18}),"items":\[')::bigint, 1)`
	}
	rows, err := db.query(ctx, `SELECT `+day+`, action, outcome, count(*), sum(`+events+`)
FROM audit_log WHERE at_unix_ns >= ? AND at_unix_ns < ?
GROUP BY 1, action, outcome ORDER BY 1, action, outcome`, from.UnixNano(), to.UnixNano())
	if err != nil {
		return nil, mapErr("store: counting audit records", err)
	}
	defer rows.Close()
	var out []audit.Tally
	for rows.Next() {
		var t audit.Tally
		var d int64
		if err := rows.Scan(&d, &t.Action, &t.Outcome, &t.Records, &t.Events); err != nil {
			return nil, mapErr("store: counting audit records", err)
		}
		if daily {
			t.Day = time.Unix(0, d*nsPerDay).UTC()
		}
		out = append(out, t)
	}
	return out, mapErr("store: counting audit records", rows.Err())
}
