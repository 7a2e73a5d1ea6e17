package audit

import (
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"
	"unicode"
)

// Finding records: `thiqa audit find` looks up the records an operator
// names (by object, actor, action, outcome, time or seq) in the live log.
// The store runs the query (RecordFinder); Find checks the query, reads at
// most its limit and records the reading itself (ReadAction) before any
// record is handed back.

// ReadAction is the action of the record a search of the audit log leaves
// (the name policies gives reading the audit log).
const ReadAction = "audit.read"

// MaxFindLimit bounds Query.Limit; DefaultFindLimit is its default.
const (
	MaxFindLimit     = 10000
	DefaultFindLimit = 50
)

// ErrBadQuery is returned (wrapped) by Find for a query it refuses.
var ErrBadQuery = errors.New("audit: bad search")

// ErrReadNotRecorded is returned (wrapped) by Find when the record of the
// search could not be appended: nothing is returned then.
var ErrReadNotRecorded = errors.New("audit: the search could not be recorded in the audit log")

// Query selects records. Every field set must match; zero fields match
// everything.
type Query struct {
	// Seq selects the one record with this seq.
	Seq int64 `json:"seq,omitempty"`
	// FromSeq selects records with seq >= FromSeq.
	FromSeq int64 `json:"fromSeq,omitempty"`
	// Actions selects records whose action is one of them.
	Actions []string `json:"actions,omitempty"`
	// Object, Actor and Outcome select records with this field.
	Object  string `json:"object,omitempty"`
	Actor   string `json:"actor,omitempty"`
	Outcome string `json:"outcome,omitempty"`
	// Since selects records made at or after it (inclusive), Until
	// records made strictly before it (exclusive).
	Since time.Time `json:"since,omitzero"`
	Until time.Time `json:"until,omitzero"`
	// Limit is the most records returned (DefaultFindLimit when 0, at
	// most MaxFindLimit).
	Limit int `json:"limit"`
	// OldestFirst orders by seq ascending; the default is newest first.
	// The limit keeps the first records of that order.
	OldestFirst bool `json:"oldestFirst,omitempty"`
}

// RecordFinder runs a query on the live log; store.DB implements it.
type RecordFinder interface {
	// FindAuditRecords returns at most q.Limit records matching q, in
	// seq order (descending unless q.OldestFirst). It reads by the
	// indexes on (object, seq), (actor, seq) or (action, seq) when q
	// names an object, an actor or actions; by time alone, it walks
	// seqs in q's order from the newest (oldest) record or between the
	// lowest and the highest seq of the records of the window (the index
	// on time, seq), whichever it finds cheaper; otherwise it walks seqs
	// in q's order and stops at the limit.
	FindAuditRecords(ctx context.Context, q Query) ([]Record, error)
}

// Appender appends one record; *Log implements it.
type Appender interface {
	Append(ctx context.Context, e Entry) (Record, error)
}

// Found is the answer of Find.
type Found struct {
	// Records are the matching records, in the query's order.
	Records []Record
	// More says that more records match beyond the limit.
	More bool
	// ArchivedBelow is set (the first live seq) when the query reaches
	// records moved to an archive file (thiqa audit archive), which are
	// not searched; 0 otherwise. With archive files (FindWithArchives)
	// it is set the same way, and NotSearched says which of those records
	// the files given do not hold.
	ArchivedBelow int64
	// NotSearched are the archived records the query may select that no
	// archive file given to FindWithArchives holds (none when the files
	// cover every archived record it may select).
	NotSearched []ArchiveGap
}

// Check validates q and fills in its default limit.
func (q *Query) Check() error {
	switch {
	case q.Limit == 0:
		q.Limit = DefaultFindLimit
	case q.Limit < 0 || q.Limit > MaxFindLimit:
		return fmt.Errorf("%w: limit %d: want 1 to %d", ErrBadQuery, q.Limit, MaxFindLimit)
	}
	switch {
	case q.Seq < 0:
		return fmt.Errorf("%w: seq %d: give the seq of a record (1 or more)", ErrBadQuery, q.Seq)
	case q.FromSeq < 0:
		return fmt.Errorf("%w: from seq %d: give the seq of a record (1 or more)", ErrBadQuery, q.FromSeq)
	case q.Seq > 0 && q.FromSeq > 0:
		return fmt.Errorf("%w: give either a seq or a first seq, not both", ErrBadQuery)
	case !q.Since.IsZero() && !q.Until.IsZero() && !q.Since.Before(q.Until):
		return fmt.Errorf("%w: since %s is not before until %s", ErrBadQuery, q.Since.UTC().Format(time.RFC3339Nano), q.Until.UTC().Format(time.RFC3339Nano))
	}
	for _, a := range q.Actions {
		if a == "" {
			return fmt.Errorf("%w: empty action", ErrBadQuery)
		}
	}
	return nil
}

// Find runs q on st and records the search (action ReadAction, by actor,
// object q.Object, details: the query and the number of records returned)
// in log before returning the records: when the record cannot be
// appended, it returns ErrReadNotRecorded and no record. arch, when not
// nil, is read for the archived prefix (ReadArchivedPrefix) to tell
// whether the query reaches archived records.
func Find(ctx context.Context, st RecordFinder, arch any, log Appender, actor string, q Query) (Found, error) {
	if err := q.Check(); err != nil {
		return Found{}, err
	}
	ask := q
	ask.Limit = q.Limit + 1 // one more tells whether more match
	recs, err := st.FindAuditRecords(ctx, ask)
	if err != nil {
		return Found{}, fmt.Errorf("searching the audit log: %w", err)
	}
	f := Found{Records: recs}
	if len(recs) > q.Limit {
		f.Records, f.More = recs[:q.Limit], true
	}
	if arch != nil {
		if f.ArchivedBelow, err = reachesArchived(ctx, st, arch, q); err != nil {
			return Found{}, err
		}
	}
	details := map[string]any{"query": q, "returned": len(f.Records)}
	if _, err := log.Append(ctx, Entry{Actor: actor, Action: ReadAction, Object: q.Object, Outcome: OutcomeSuccess, Details: details}); err != nil {
		return Found{}, fmt.Errorf("%w: %w", ErrReadNotRecorded, err)
	}
	return f, nil
}

// reachesArchived returns the first live seq when records were archived
// and q may select some of them, 0 otherwise: its seqs reach below the
// first live record and, with a Since bound, that record was made after
// Since (archived records were made before it).
func reachesArchived(ctx context.Context, st RecordFinder, arch any, q Query) (int64, error) {
	p, err := ReadArchivedPrefix(ctx, arch)
	if err != nil {
		return 0, err
	}
	below := p.Below
	switch {
	case below <= 1:
		return 0, nil
	case q.Seq > 0:
		if q.Seq >= below {
			return 0, nil
		}
		return below, nil
	case q.FromSeq >= below:
		return 0, nil
	case q.Since.IsZero():
		return below, nil
	}
	first, err := st.FindAuditRecords(ctx, Query{FromSeq: below, Limit: 1, OldestFirst: true})
	if err != nil {
		return 0, fmt.Errorf("reading the first live audit record: %w", err)
	}
	if len(first) == 1 && !first[0].Time.After(q.Since) {
		return 0, nil
	}
	return below, nil
}

// WriteRecordsJSON writes recs as JSON Lines, one object per record with
// the fields of an archive file's record lines (seq, time, actor, action,
// object, outcome, details as the exact stored text, prevHash and hash in
// hex), so that one tool reads both.
func WriteRecordsJSON(w io.Writer, recs []Record) error {
	enc := json.NewEncoder(w)
	for _, r := range recs {
		if err := enc.Encode(recordLine(r)); err != nil {
			return fmt.Errorf("audit: writing a record: %w", err)
		}
	}
	return nil
}

// recordLine is r as an archive file's record line.
func recordLine(r Record) archiveRecordLine {
	return archiveRecordLine{
		Seq: r.Seq, Time: r.Time.UTC().Format(time.RFC3339Nano), Actor: r.Actor, Action: r.Action,
		Object: r.Object, Outcome: r.Outcome, Details: string(r.Details),
		PrevHash: hex.EncodeToString(r.PrevHash), Hash: hex.EncodeToString(r.Hash),
	}
}

// WriteRecordsText writes recs one per line: seq, time (UTC, RFC 3339),
// actor, action, object, outcome and the details as compact JSON,
// separated by spaces. An empty field is written "-", and one holding a
// space, a quote or a control character is quoted (Go syntax), so that
// each record stays one line of seven fields.
func WriteRecordsText(w io.Writer, recs []Record) error {
	var b []byte
	for _, r := range recs {
		b = strconv.AppendInt(b[:0], r.Seq, 10)
		b = append(b, ' ')
		b = r.Time.UTC().AppendFormat(b, time.RFC3339Nano)
		for _, s := range []string{r.Actor, r.Action, r.Object, r.Outcome} {
			b = append(b, ' ')
			b = appendField(b, s)
		}
		b = append(b, ' ')
		var c bytes.Buffer
		if json.Compact(&c, r.Details) == nil && c.Len() > 0 {
			b = append(b, c.Bytes()...)
		} else {
			b = appendField(b, string(r.Details))
		}
		b = append(b, '\n')
		if _, err := w.Write(b); err != nil {
			return fmt.Errorf("audit: writing a record: %w", err)
		}
	}
	return nil
}

// appendField appends s as one field of a text line.
func appendField(b []byte, s string) []byte {
	if s == "" {
		return append(b, '-')
	}
	if strings.ContainsFunc(s, func(r rune) bool {
		return unicode.IsSpace(r) || unicode.IsControl(r) || r == '"' || r == unicode.ReplacementChar
	}) || s == "-" {
		return strconv.AppendQuote(b, s)
	}
	return append(b, s...)
}
