// Package pdf is a defensive PDF reader for signature validation: it reads
// cross-reference tables and streams, object streams and incremental
// revisions from an io.ReaderAt, with bounded nesting, reference-cycle
// detection and size limits, and never panics on malformed input.
package pdf

import (
	"fmt"
	"sort"
)

// Object is a PDF object: nil (null), bool, int64, float64, String, Name,
// Array, Dict, *Stream or Ref.
type Object any

// Name is a PDF name without the leading slash.
type Name string

// String is a PDF string's bytes. Hex records whether it was written in
// hexadecimal, Start and End its byte span in the file (for /Contents).
type String struct {
	Bytes      []byte
	Hex        bool
	Start, End int64
}

// Array is a PDF array.
type Array []Object

// Dict is a PDF dictionary.
type Dict map[Name]Object

// Ref is an indirect reference.
type Ref struct {
	Num int64
	Gen int64
}

// String renders the reference as "n g R".
func (r Ref) String() string { return fmt.Sprintf("%d %d R", r.Num, r.Gen) }

// Stream is a stream object: its dictionary and the file offset and length
// of its raw data.
type Stream struct {
	Dict   Dict
	Offset int64
	Length int64
}

// Equal compares two objects structurally (streams by dictionary and raw
// data position/length; callers compare stream data when needed).
func Equal(a, b Object) bool {
	switch x := a.(type) {
	case nil:
		return b == nil
	case bool, int64, float64, Name, Ref:
		return a == b
	case String:
		y, ok := b.(String)
		return ok && string(x.Bytes) == string(y.Bytes)
	case Array:
		y, ok := b.(Array)
		if !ok || len(x) != len(y) {
			return false
		}
		for i := range x {
			if !Equal(x[i], y[i]) {
				return false
			}
		}
		return true
	case Dict:
		y, ok := b.(Dict)
		if !ok || len(x) != len(y) {
			return false
		}
		for k, v := range x {
			w, ok := y[k]
			if !ok || !Equal(v, w) {
				return false
			}
		}
		return true
	case *Stream:
		y, ok := b.(*Stream)
		return ok && Equal(x.Dict, y.Dict) && x.Length == y.Length
	}
	return false
}

// Keys returns a dictionary's keys sorted.
func (d Dict) Keys() []Name {
	out := make([]Name, 0, len(d))
	for k := range d {
		out = append(out, k)
	}
	sort.Slice(out, func(i, j int) bool { return out[i] < out[j] })
	return out
}

// Name returns d[k] as a Name ("" if absent or another type).
func (d Dict) Name(k Name) Name {
	n, _ := d[k].(Name)
	return n
}
