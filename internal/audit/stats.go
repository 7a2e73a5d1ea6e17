package audit

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"text/tabwriter"
	"time"
)

// Activity statistics: how many of each audited action the deployment
// performed in a period, as a supervisory body, a conformity assessment or
// an annual report asks for them ("how many signatures, seals, time-stamps
// and digital-ID logins last month; how many refused"). They are counted
// from the audit log, which holds a record of every issuance, revocation,
// time-stamp, signature, seal, login and refusal.
//
// A collective record (Group) counts as one record and as as many events
// as it holds items: a TSA's record of 40 time-stamps is 40 time-stamps.
// A collective record is recognised by its details, which begin
// {"count":N,"items":[ (no other record's details have that shape).

// Period is how statistics are grouped in time: by calendar month or day
// in UTC, or one total for the whole range.
type Period string

// The periods of ParsePeriod.
const (
	PeriodMonth Period = "month"
	PeriodDay   Period = "day"
	PeriodTotal Period = "total"
)

// ErrBadPeriod is returned by ParsePeriod for a period it does not know.
var ErrBadPeriod = errors.New("audit: unknown period")

// ParsePeriod reads "month", "day" or "total".
func ParsePeriod(s string) (Period, error) {
	switch p := Period(s); p {
	case PeriodMonth, PeriodDay, PeriodTotal:
		return p, nil
	}
	return "", fmt.Errorf("%w %q: want month, day or total", ErrBadPeriod, s)
}

// Label returns the period t falls in, as statistics name it: 2026-11 for
// a month, 2026-11-30 for a day (both UTC), "total" for PeriodTotal.
func (p Period) Label(t time.Time) string {
	switch p {
	case PeriodMonth:
		return t.UTC().Format("2006-01")
	case PeriodDay:
		return t.UTC().Format("2006-01-02")
	}
	return string(PeriodTotal)
}

// Tally counts the records of one action with one outcome, on one day
// or in a whole range.
type Tally struct {
	// Day is the UTC day the records' times fall on; the zero time when
	// the tally covers the whole range.
	Day time.Time
	// Action and Outcome are the records' fields.
	Action, Outcome string
	// Records is how many records there are.
	Records int64
	// Events is how many events they record: Records, with each collective
	// record counted as its number of items.
	Events int64
}

// TallyReader counts the audit log's records; store.DB implements it.
type TallyReader interface {
	// AuditTallies counts the records whose time is in [from, to), grouped
	// by action and outcome, and by UTC day when daily is set, in one pass
	// over the log.
	AuditTallies(ctx context.Context, from, to time.Time, daily bool) ([]Tally, error)
}

// ErrBadRange is returned by CountActivity for a range that ends before it
// starts.
var ErrBadRange = errors.New("audit: the range ends before it starts")

// Activity is the statistics of a range of time: per period and action,
// the events by outcome.
type Activity struct {
	// From and To bound the range: records with From <= time < To.
	From, To time.Time
	// FromFirstRecord says no lower bound was asked for: the range starts
	// at the log's beginning, and the text says so (From is then the Unix
	// epoch). FirstRecord is the time of the first record of the live log
	// (zero when the log is empty), which the text shows.
	FromFirstRecord bool
	FirstRecord     time.Time
	// By is how the rows are grouped in time.
	By Period
	// Rows are ordered by period, then action.
	Rows []ActivityRow
}

// ActivityRow is one action's events in one period.
type ActivityRow struct {
	Period string `json:"period"`
	Action string `json:"action"`
	// Outcomes maps each outcome (success, refused, failure) to its number
	// of events.
	Outcomes map[string]int64 `json:"outcomes"`
	// Events is the sum of Outcomes.
	Events int64 `json:"events"`
	// Records is how many audit records hold these events.
	Records int64 `json:"records"`
}

// CountActivity counts the events of [from, to) grouped by period.
func CountActivity(ctx context.Context, r TallyReader, from, to time.Time, by Period) (Activity, error) {
	if to.Before(from) {
		return Activity{}, fmt.Errorf("%w: from %s, to %s", ErrBadRange, from.UTC().Format(time.RFC3339), to.UTC().Format(time.RFC3339))
	}
	if _, err := ParsePeriod(string(by)); err != nil {
		return Activity{}, err
	}
	tallies, err := r.AuditTallies(ctx, from, to, by != PeriodTotal)
	if err != nil {
		return Activity{}, fmt.Errorf("counting audit records: %w", err)
	}
	a := Activity{From: from.UTC(), To: to.UTC(), By: by}
	index := map[[2]string]int{}
	for _, t := range tallies {
		period := by.Label(t.Day)
		k := [2]string{period, t.Action}
		i, ok := index[k]
		if !ok {
			i = len(a.Rows)
			index[k] = i
			a.Rows = append(a.Rows, ActivityRow{Period: period, Action: t.Action, Outcomes: map[string]int64{}})
		}
		row := &a.Rows[i]
		row.Outcomes[t.Outcome] += t.Events
		row.Events += t.Events
		row.Records += t.Records
	}
	slices.SortFunc(a.Rows, func(x, y ActivityRow) int {
		return cmp.Or(strings.Compare(x.Period, y.Period), strings.Compare(x.Action, y.Action))
	})
	return a, nil
}

// activityJSON is the JSON form of Activity.
type activityJSON struct {
	From string        `json:"from"`
	To   string        `json:"to"`
	By   Period        `json:"by"`
	Rows []ActivityRow `json:"rows"`
}

// WriteJSON writes a as a JSON object: from, to (RFC 3339, UTC), by and
// rows (period, action, outcomes, events, records).
func (a Activity) WriteJSON(w io.Writer) error {
	rows := a.Rows
	if rows == nil {
		rows = []ActivityRow{}
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(activityJSON{From: a.From.Format(time.RFC3339), To: a.To.Format(time.RFC3339), By: a.By, Rows: rows})
}

// knownOutcomes are the outcome columns of the text table, in this order;
// any other outcome is added after them.
var knownOutcomes = []string{OutcomeSuccess, OutcomeRefused, OutcomeFailure}

// WriteText writes a as a table: a line saying what was counted, then one
// line per period and action with the events per outcome.
func (a Activity) WriteText(w io.Writer) error {
	cols := slices.Clone(knownOutcomes)
	for _, r := range a.Rows {
		for o := range r.Outcomes {
			if !slices.Contains(cols, o) {
				cols = append(cols, o)
			}
		}
	}
	slices.Sort(cols[len(knownOutcomes):])
	from := a.From.Format(time.RFC3339)
	if a.FromFirstRecord {
		from = "the first record"
		if !a.FirstRecord.IsZero() {
			from += " (" + a.FirstRecord.UTC().Format(time.RFC3339) + ")"
		}
	}
	fmt.Fprintf(w, "audit activity from %s to %s (UTC), by %s: events recorded in the audit log\n",
		from, a.To.Format(time.RFC3339), a.By)
	if len(a.Rows) == 0 {
		_, err := fmt.Fprintln(w, "no records in this range")
		return err
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "period\taction\t%s\tevents\trecords\n", strings.Join(cols, "\t"))
	for _, r := range a.Rows {
		fmt.Fprintf(tw, "%s\t%s\t", r.Period, r.Action)
		for _, c := range cols {
			fmt.Fprintf(tw, "%d\t", r.Outcomes[c])
		}
		fmt.Fprintf(tw, "%d\t%d\n", r.Events, r.Records)
	}
	return tw.Flush()
}

// ErrBadDate is returned by ParseDate for a time it cannot read.
var ErrBadDate = errors.New("audit: want a month (2026-11), a day (2026-11-30) or an RFC 3339 time")

// ParseDate reads a bound of a statistics range: a month (2026-11, its
// first instant), a day (2026-11-30, its first instant), both UTC, or an
// RFC 3339 time.
func ParseDate(s string) (time.Time, error) {
	for _, layout := range []string{"2006-01", "2006-01-02", time.RFC3339Nano} {
		if t, err := time.Parse(layout, s); err == nil {
			if t.Year() < 1970 || t.Year() > 2200 {
				return time.Time{}, fmt.Errorf("%w: %q is outside 1970-2200", ErrBadDate, s)
			}
			return t.UTC(), nil
		}
	}
	return time.Time{}, fmt.Errorf("%w, got %q", ErrBadDate, s)
}

// RecordReader streams the audit log's records from a seq on; store.DB
// implements it.
type RecordReader interface {
	AuditRecords(ctx context.Context, fromSeq int64, fn func(Record) error) error
}

// errFirstRead stops FirstRecordTime's read after one record.
var errFirstRead = errors.New("audit: first record read")

// FirstRecordTime returns the time of the first record at or after seq
// fromSeq (the first live one: ArchivedPrefix.Below); ok is false when
// there is none.
func FirstRecordTime(ctx context.Context, r RecordReader, fromSeq int64) (t time.Time, ok bool, err error) {
	err = r.AuditRecords(ctx, fromSeq, func(rec Record) error {
		t, ok = rec.Time.UTC(), true
		return errFirstRead
	})
	if err != nil && !errors.Is(err, errFirstRead) {
		return time.Time{}, false, fmt.Errorf("audit: reading the first record: %w", err)
	}
	return t, ok, nil
}
