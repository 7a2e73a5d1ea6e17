package audit_test

import (
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/thiqa/thiqa/internal/audit"
)

// findRecord is a record as the store returns it.
func findRecord() audit.Record {
	r := audit.Record{Seq: 42, Time: time.Date(2026, 11, 5, 10, 0, 0, 123456789, time.UTC), Actor: "ra:officer-7", Action: "certificate.issue",
		Object: "5EA1000000000001", Outcome: audit.OutcomeSuccess, Details: json.RawMessage(`{"ca": "citizen", "profile":"citizen-signing"}`),
		PrevHash: bytes.Repeat([]byte{1}, audit.HashSize)}
	r.Hash = audit.HashRecord(r)
	return r
}

// TestFindWriteText checks the text line of a record: seven fields, the
// details compacted, an empty field "-", one with spaces quoted.
func TestFindWriteText(t *testing.T) {
	r := findRecord()
	odd := r
	odd.Seq, odd.Object, odd.Actor, odd.Details = 43, "", "cli:an operator", json.RawMessage(`{"note":"two\nlines"}`)
	bad := r
	bad.Seq, bad.Details = 44, json.RawMessage("not json\n")
	var b bytes.Buffer
	if err := audit.WriteRecordsText(&b, []audit.Record{r, odd, bad}); err != nil {
		t.Fatal(err)
	}
	want := `42 2026-11-05T10:00:00.123456789Z ra:officer-7 certificate.issue 5EA1000000000001 success {"ca":"citizen","profile":"citizen-signing"}
43 2026-11-05T10:00:00.123456789Z "cli:an operator" certificate.issue - success {"note":"two\nlines"}
44 2026-11-05T10:00:00.123456789Z ra:officer-7 certificate.issue 5EA1000000000001 success "not json\n"
`
	if b.String() != want {
		t.Fatalf("got\n%s\nwant\n%s", b.String(), want)
	}
}

// TestFindWriteJSON checks that a record's JSON line has the fields of an
// archive file's record line, details as the stored text: ReadArchive's
// line parser reads it back into the same record.
func TestFindWriteJSON(t *testing.T) {
	r := findRecord()
	var b bytes.Buffer
	if err := audit.WriteRecordsJSON(&b, []audit.Record{r, r}); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSuffix(b.String(), "\n"), "\n")
	if len(lines) != 2 {
		t.Fatalf("%d lines: %s", len(lines), b.String())
	}
	var got map[string]any
	if err := json.Unmarshal([]byte(lines[0]), &got); err != nil {
		t.Fatal(err)
	}
	want := map[string]any{"seq": 42.0, "time": "2026-11-05T10:00:00.123456789Z", "actor": "ra:officer-7", "action": "certificate.issue",
		"object": "5EA1000000000001", "outcome": "success", "details": string(r.Details), "prevHash": hex.EncodeToString(r.PrevHash), "hash": hex.EncodeToString(r.Hash)}
	if len(got) != len(want) {
		t.Fatalf("fields %v, want %v", got, want)
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s: %v, want %v", k, got[k], v)
		}
	}
	back, err := audit.ParseArchiveRecordLine([]byte(lines[0]))
	if err != nil || !bytes.Equal(audit.HashRecord(back), r.Hash) {
		t.Fatalf("the archive's line parser reads %+v (%v), not the record", back, err)
	}
}

// TestFindQueryCheck checks the queries Find refuses and the default limit.
func TestFindQueryCheck(t *testing.T) {
	day := time.Date(2026, 11, 5, 0, 0, 0, 0, time.UTC)
	for _, q := range []audit.Query{
		{Limit: -1}, {Limit: audit.MaxFindLimit + 1}, {Seq: -1}, {FromSeq: -1}, {Seq: 3, FromSeq: 2},
		{Since: day, Until: day}, {Since: day.Add(time.Second), Until: day}, {Actions: []string{"a", ""}},
	} {
		if err := q.Check(); !errors.Is(err, audit.ErrBadQuery) {
			t.Errorf("%+v: %v, want ErrBadQuery", q, err)
		}
	}
	q := audit.Query{Since: day, Until: day.Add(time.Nanosecond), Limit: 0}
	if err := q.Check(); err != nil || q.Limit != audit.DefaultFindLimit {
		t.Fatalf("%+v: %v", q, err)
	}
	q = audit.Query{Limit: audit.MaxFindLimit}
	if err := q.Check(); err != nil {
		t.Fatal(err)
	}
}

// finder answers every query with recs.
type finder struct{ recs []audit.Record }

func (f finder) FindAuditRecords(_ context.Context, q audit.Query) ([]audit.Record, error) {
	return f.recs[:min(len(f.recs), q.Limit)], nil
}

// failingLog cannot append.
type failingLog struct{}

func (failingLog) Append(context.Context, audit.Entry) (audit.Record, error) {
	return audit.Record{}, errors.New("disk full")
}

// TestFindRefusesUnrecorded: when the search cannot be recorded, Find
// returns no record.
func TestFindRefusesUnrecorded(t *testing.T) {
	f, err := audit.Find(context.Background(), finder{[]audit.Record{findRecord()}}, nil, failingLog{}, "cli:op", audit.Query{})
	if !errors.Is(err, audit.ErrReadNotRecorded) || f.Records != nil {
		t.Fatalf("got %d records, %v; want none, ErrReadNotRecorded", len(f.Records), err)
	}
}

// FuzzParseDate: the bound parser of `audit find --since/--until` (and
// `audit report`) never panics, and what it accepts is a UTC time in
// 1970-2200 that its RFC 3339 form reads back to.
func FuzzParseDate(f *testing.F) {
	for _, s := range []string{"2026-11", "2026-11-05", "2026-11-05T10:00:00Z", "2026-11-05T10:00:00.5+04:00", "1969-12-31", "2201-01", "", "2026-13", "yesterday"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got, err := audit.ParseDate(s)
		if err != nil {
			if !errors.Is(err, audit.ErrBadDate) {
				t.Fatalf("%q: error %v is not ErrBadDate", s, err)
			}
			return
		}
		if got.Location() != time.UTC || got.Year() < 1970 || got.Year() > 2200 {
			t.Fatalf("%q: accepted %v", s, got)
		}
		again, err := audit.ParseDate(got.Format(time.RFC3339Nano))
		if err != nil || !again.Equal(got) {
			t.Fatalf("%q: %v reads back as %v, %v", s, got, again, err)
		}
	})
}

// FuzzWriteRecordsText: whatever the fields hold, a record is one line
// (no line feed or carriage return inside it).
func FuzzWriteRecordsText(f *testing.F) {
	f.Add("ra:officer-7", "certificate.issue", "5EA1", "success", `{"a": 1}`)
	f.Add("cli:a b", "x\ny", "", "-", "not json\r\n")
	f.Add("\u2028", "\"", "\x00", "\xff", `{"s":"\u2028"}`)
	f.Fuzz(func(t *testing.T, actor, action, object, outcome, details string) {
		r := findRecord()
		r.Actor, r.Action, r.Object, r.Outcome, r.Details = actor, action, object, outcome, json.RawMessage(details)
		var b bytes.Buffer
		if err := audit.WriteRecordsText(&b, []audit.Record{r}); err != nil {
			t.Fatal(err)
		}
		out := b.String()
		if strings.Count(out, "\n") != 1 || !strings.HasSuffix(out, "\n") || strings.Contains(out, "\r") {
			t.Fatalf("record printed as %q", out)
		}
	})
}
