// Package pdfdoc reads the object structure of a PDF file (classic
// cross-reference tables, cross-reference streams, object streams) from an
// io.ReaderAt without loading the file into memory, and writes incremental
// updates that append new and changed objects after the original bytes.
//
// It is the PDF layer of the PAdES signer: it understands only as much of
// PDF as signing needs (catalog, page tree, forms, streams) and never
// panics on malformed input; errors wrap ErrNotPDF, ErrEncrypted or
// ErrMalformed.
package pdfdoc

import (
	"errors"
	"fmt"
)

// Sentinel errors that callers test with errors.Is.
var (
	// ErrNotPDF reports input without a PDF header.
	ErrNotPDF = errors.New("pdfdoc: not a PDF file")
	// ErrEncrypted reports a PDF with an /Encrypt dictionary in its trailer.
	ErrEncrypted = errors.New("pdfdoc: encrypted PDF")
	// ErrMalformed reports a PDF whose structure cannot be read.
	ErrMalformed = errors.New("pdfdoc: malformed PDF")
	// ErrNoPage reports a page index beyond the document's last page.
	ErrNoPage = errors.New("pdfdoc: no such page")
)

func malformed(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrMalformed, fmt.Sprintf(format, args...))
}

// Object is a PDF object: nil (null), bool, int64, float64, String, Name,
// Array, Dict, Ref or *Stream.
type Object any

// Name is a PDF name object, without the leading slash.
type Name string

// String is a PDF string object (the decoded bytes).
type String []byte

// HexString is a PDF string that is written in hexadecimal form.
type HexString []byte

// Array is a PDF array.
type Array []Object

// Dict is a PDF dictionary.
type Dict map[Name]Object

// Ref is an indirect reference "Num Gen R".
type Ref struct {
	Num int
	Gen int
}

// Stream is a stream object: its dictionary and, for streams read from a
// file, the offset and length of its raw data; for streams to be written,
// the raw (already encoded) data.
type Stream struct {
	Dict   Dict
	Offset int64 // offset of the raw data in the file (read streams)
	Length int64 // length of the raw data (read streams)
	Data   []byte
}

// Raw is pre-serialised PDF syntax written verbatim.
type Raw []byte

// keyword is a bare PDF keyword met while parsing (obj, endobj, stream, R…).
type keyword string

// Name returns d[key] as a Name, or "" when it is not one.
func (d Dict) Name(key Name) Name {
	n, _ := d[key].(Name)
	return n
}

// Int returns d[key] as an integer when it is one.
func (d Dict) Int(key Name) (int64, bool) {
	switch v := d[key].(type) {
	case int64:
		return v, true
	case float64:
		return int64(v), v == float64(int64(v))
	}
	return 0, false
}

// Clone returns a shallow copy of d.
func (d Dict) Clone() Dict {
	c := make(Dict, len(d)+2)
	for k, v := range d {
		c[k] = v
	}
	return c
}
