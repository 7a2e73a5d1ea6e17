package audit

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"time"
	"unicode/utf8"
)

// Collective records: a service that records many small, alike events (a
// TSA records every time-stamp token) can have the events of one batch
// sealed into one record instead of one record each. Each event is an item,
// a JSON object the caller encodes; Group.Append returns, like Append, only
// once the record holding the item is committed, so every event is covered
// by a durable, hash-chained record before the caller answers. The chain,
// its hashes and Verify are the same as for any record.
//
// A collective record has the Group's actor, action, object and outcome,
// and these details (keys in this order, items in the order they were
// queued):
//
//	{"count":3,"items":[{…},{…},{…}]}
//
// A batch holds one collective record per Group that has items in it (more
// when the items exceed Options.MaxDetailsBytes together), at the place of
// the Group's first item in the batch.

// Group is a collective record's fixed fields, validated once; its items
// are appended with Append. It is safe for concurrent use.
type Group struct {
	l    *Log
	head Record // Actor, Action, Object, Outcome
	// maxItem bounds one item so that it fits a record's details.
	maxItem int
}

// collectiveOverhead is the size of the details around the items, with a
// count of up to 20 digits.
const collectiveOverhead = len(`{"count":,"items":[]}`) + 20

// Group validates the fields of a collective record (the rules of Append:
// actor, action and outcome non-empty, UTF-8 without NUL, at most
// MaxFieldBytes) and returns the Group its items are appended to.
func (l *Log) Group(actor, action, object, outcome string) (*Group, error) {
	rec, err := l.prepare(Entry{Actor: actor, Action: action, Object: object, Outcome: outcome})
	if err != nil {
		return nil, err
	}
	rec.Details = nil
	return &Group{l: l, head: rec, maxItem: l.opts.MaxDetailsBytes - collectiveOverhead}, nil
}

// Append records item, a JSON object, in a collective record of g and
// returns that record once it is committed. The record's Details is shared
// by the items sealed with it: do not modify it. Context handling is that
// of Log.Append. An item that is not a JSON object in valid UTF-8, or too
// large for a record, is refused with ErrInvalidEntry.
func (g *Group) Append(ctx context.Context, item []byte) (Record, error) {
	start := time.Now()
	switch {
	case len(item) > g.maxItem:
		return Record{}, fmt.Errorf("%w: item is longer than %d bytes", ErrInvalidEntry, g.maxItem)
	case len(item) < 2 || item[0] != '{' || item[len(item)-1] != '}':
		return Record{}, fmt.Errorf("%w: item is not a JSON object", ErrInvalidEntry)
	case !utf8.Valid(item):
		return Record{}, fmt.Errorf("%w: item is not valid UTF-8", ErrInvalidEntry)
	case !json.Valid(item):
		return Record{}, fmt.Errorf("%w: item is not valid JSON", ErrInvalidEntry)
	}
	return g.l.enqueue(ctx, start, &request{group: g, item: item, done: make(chan result, 1)})
}

// gather turns a batch of requests into its records: one per Append and
// one per Group (per MaxDetailsBytes of items) for Group.Append. owner[i]
// is the index of the record that covers live[i].
func (l *Log) gather(live []*request) (recs []Record, owner []int) {
	recs = make([]Record, 0, len(live))
	owner = make([]int, len(live))
	type open struct {
		g     *Group
		rec   int // index in recs
		items [][]byte
		size  int
	}
	var groups []*open
	find := func(g *Group) *open {
		for _, o := range groups {
			if o.g == g {
				return o
			}
		}
		return nil
	}
	for i, r := range live {
		if r.group == nil {
			owner[i] = len(recs)
			recs = append(recs, r.rec)
			continue
		}
		o := find(r.group)
		if o != nil && o.size+1+len(r.item) > r.group.maxItem {
			// Full: this group's next items go to a new record.
			recs[o.rec].Details = collectiveDetails(o.items, o.size)
			o.g = nil
			o = nil
		}
		if o == nil {
			o = &open{g: r.group, rec: len(recs)}
			groups = append(groups, o)
			recs = append(recs, r.group.head)
		}
		if len(o.items) > 0 {
			o.size++ // the comma
		}
		o.items = append(o.items, r.item)
		o.size += len(r.item)
		owner[i] = o.rec
	}
	for _, o := range groups {
		if o.g != nil {
			recs[o.rec].Details = collectiveDetails(o.items, o.size)
		}
	}
	return recs, owner
}

// collectiveDetails encodes {"count":N,"items":[…]}; size is the length
// of the items joined by commas.
func collectiveDetails(items [][]byte, size int) json.RawMessage {
	b := make([]byte, 0, collectiveOverhead+size)
	b = append(b, `{"count":`...)
	b = strconv.AppendInt(b, int64(len(items)), 10)
	b = append(b, `,"items":[`...)
	for i, it := range items {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, it...)
	}
	return append(b, "]}"...)
}

// AppendJSONString appends s as a JSON string: quotes, backslashes and
// control characters escaped, invalid UTF-8 replaced by U+FFFD. It helps
// callers encode items without reflection.
func AppendJSONString(dst []byte, s string) []byte {
	const hex = "0123456789abcdef"
	dst = append(dst, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c >= 0x20 && c != '"' && c != '\\' && c < utf8.RuneSelf {
			i++
			continue
		}
		if c < utf8.RuneSelf {
			dst = append(dst, s[start:i]...)
			switch c {
			case '"', '\\':
				dst = append(dst, '\\', c)
			case '\n':
				dst = append(dst, '\\', 'n')
			case '\r':
				dst = append(dst, '\\', 'r')
			case '\t':
				dst = append(dst, '\\', 't')
			default:
				dst = append(dst, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			dst = append(dst, s[start:i]...)
			dst = append(dst, `\ufffd`...)
			i++
			start = i
			continue
		}
		i += size
	}
	dst = append(dst, s[start:]...)
	return append(dst, '"')
}
