package pdf

import (
	"bufio"
	"bytes"
	"compress/zlib"
	"errors"
	"fmt"
	"io"
	"strconv"
)

// Limits for cross-reference structures.
const (
	maxSections   = 4096
	maxObjNum     = 1 << 24
	maxRefChain   = 32
	maxDecodedLen = 256 << 20
)

type entry struct {
	typ byte  // 0 free, 1 at offset, 2 in object stream
	off int64 // offset, or object stream number
	gen int64 // generation, or index in the object stream
}

// Section is one cross-reference section: one revision of the document.
type Section struct {
	// Offset is where the section starts (the startxref value).
	Offset int64
	// End is the end of the revision: just after its %%EOF marker
	// (EndEOL after the end-of-line that follows, if any).
	End, EndEOL int64
	Trailer     Dict
	entries     map[int64]entry
}

// Objects lists the object numbers this section defines (in use or freed).
func (s *Section) Objects() []int64 {
	out := make([]int64, 0, len(s.entries))
	for n := range s.entries {
		out = append(out, n)
	}
	return out
}

// File is an opened PDF.
type File struct {
	r        io.ReaderAt
	size     int64
	Sections []*Section // oldest first
	objCache map[objKey]Object
	offCache map[int64]offObject
	scanned  map[int64]int64
	// Repaired is true when the cross-reference chain was unreadable and
	// objects were located by scanning the file.
	Repaired bool
	stmCache map[objKey]*objStream
	// br is the read-ahead buffer readObjectAt lends its lexers (objects
	// are read one at a time).
	br *bufio.Reader
}

// offObject is an object read at an offset of the file, for every
// revision whose cross-reference entry points there.
type offObject struct {
	num int64
	obj Object
}

type objStream struct {
	data     []byte
	first, n int64
}

type objKey struct {
	rev int
	num int64
}

// Open reads the cross-reference chain of a PDF.
func Open(r io.ReaderAt, size int64) (*File, error) {
	f := &File{r: r, size: size, objCache: map[objKey]Object{}, offCache: map[int64]offObject{}, stmCache: map[objKey]*objStream{}}
	if err := f.readChain(); err != nil {
		if rerr := f.repair(); rerr != nil {
			return nil, err
		}
	}
	return f, nil
}

func (f *File) readChain() error {
	start, err := f.lastStartXref()
	if err != nil {
		return err
	}
	seen := map[int64]bool{}
	var chain []*Section
	off := start
	for {
		if seen[off] {
			return malformed("cyclic /Prev chain at %d", off)
		}
		if len(chain) >= maxSections {
			return malformed("too many cross-reference sections")
		}
		seen[off] = true
		s, err := f.readSection(off)
		if err != nil {
			return err
		}
		chain = append(chain, s)
		prev, ok := s.Trailer["Prev"].(int64)
		if !ok {
			break
		}
		off = prev
	}
	for i := len(chain) - 1; i >= 0; i-- {
		f.Sections = append(f.Sections, chain[i])
	}
	var maxEnd, maxEOL int64
	for _, s := range f.Sections {
		s.End, s.EndEOL = f.eofAfter(s.Offset)
		// A linearized file's first-page section precedes the main one in
		// the file but follows it in the chain: a revision ends at the
		// furthest %%EOF of its sections.
		if s.End < maxEnd {
			s.End, s.EndEOL = maxEnd, maxEOL
		}
		maxEnd, maxEOL = s.End, s.EndEOL
	}
	return nil
}

// Size returns the file size.
func (f *File) Size() int64 { return f.size }

// ReaderAt returns the underlying reader.
func (f *File) ReaderAt() io.ReaderAt { return f.r }

func (f *File) lastStartXref() (int64, error) {
	n := int64(2048)
	if n > f.size {
		n = f.size
	}
	buf := make([]byte, n)
	if _, err := f.r.ReadAt(buf, f.size-n); err != nil && err != io.EOF {
		return 0, err
	}
	i := bytes.LastIndex(buf, []byte("startxref"))
	if i < 0 {
		return 0, malformed("no startxref")
	}
	fields := bytes.Fields(buf[i+9:])
	if len(fields) == 0 {
		return 0, malformed("no startxref value")
	}
	v, err := strconv.ParseInt(string(fields[0]), 10, 64)
	if err != nil || v < 0 || v >= f.size {
		return 0, malformed("bad startxref value")
	}
	return v, nil
}

// eofAfter finds the first %%EOF at or after off. It reads small windows
// first (the marker usually follows the trailer closely), larger ones as
// the search goes on.
func (f *File) eofAfter(off int64) (int64, int64) {
	chunk := 1 << 10
	buf := make([]byte, chunk+5)
	for pos := off; pos < f.size; {
		if len(buf) < chunk+5 {
			buf = make([]byte, chunk+5)
		}
		n, _ := f.r.ReadAt(buf[:chunk+5], pos)
		if n <= 0 {
			break
		}
		if i := bytes.Index(buf[:n], []byte("%%EOF")); i >= 0 {
			end := pos + int64(i) + 5
			eol := end
			tail := make([]byte, 2)
			m, _ := f.r.ReadAt(tail, end)
			if m >= 1 && tail[0] == '\r' {
				eol++
				if m == 2 && tail[1] == '\n' {
					eol++
				}
			} else if m >= 1 && tail[0] == '\n' {
				eol++
			}
			return end, eol
		}
		pos += int64(chunk) // the 5 bytes read beyond overlap the next window
		chunk = min(chunk*4, 64<<10)
	}
	return f.size, f.size
}

func (f *File) readSection(off int64) (*Section, error) {
	if f.br == nil {
		f.br = bufio.NewReaderSize(nil, lexerBufSize)
	}
	l := newLexerWith(f.br, f.r, f.size, off)
	t, err := l.next()
	if err != nil {
		return nil, err
	}
	if t.kind == tKeyword && t.s == "xref" {
		s, err := f.readTable(l, off)
		if err != nil {
			return nil, err
		}
		if xs, ok := s.Trailer["XRefStm"].(int64); ok {
			if hs, err := f.readXrefStream(xs); err == nil {
				for n, e := range hs.entries {
					if _, ok := s.entries[n]; !ok {
						s.entries[n] = e
					}
				}
			}
		}
		return s, nil
	}
	return f.readXrefStream(off)
}

func (f *File) readTable(l *lexer, off int64) (*Section, error) {
	s := &Section{Offset: off, entries: map[int64]entry{}}
	for {
		t, err := l.next()
		if err != nil {
			return nil, err
		}
		if t.kind == tKeyword && t.s == "trailer" {
			o, err := l.object(0)
			if err != nil {
				return nil, err
			}
			d, ok := o.(Dict)
			if !ok {
				return nil, malformed("trailer is not a dictionary")
			}
			s.Trailer = d
			return s, nil
		}
		if t.kind != tInt {
			return nil, malformed("bad xref subsection header at %d", t.start)
		}
		c, err := l.next()
		if err != nil || c.kind != tInt || c.i < 0 || t.i < 0 || t.i+c.i > maxObjNum {
			return nil, malformed("bad xref subsection count")
		}
		for k := int64(0); k < c.i; k++ {
			a, err1 := l.next()
			b, err2 := l.next()
			ty, err3 := l.next()
			if err1 != nil || err2 != nil || err3 != nil || a.kind != tInt || b.kind != tInt || ty.kind != tKeyword {
				return nil, malformed("bad xref entry")
			}
			num := t.i + k
			switch ty.s {
			case "n":
				s.entries[num] = entry{typ: 1, off: a.i, gen: b.i}
			case "f":
				s.entries[num] = entry{typ: 0, gen: b.i}
			default:
				return nil, malformed("bad xref entry type %q", ty.s)
			}
		}
	}
}

func (f *File) readXrefStream(off int64) (*Section, error) {
	_, obj, err := f.readObjectAt(off, nil, 0)
	if err != nil {
		return nil, fmt.Errorf("cross-reference stream at %d: %w", off, err)
	}
	st, ok := obj.(*Stream)
	if !ok || st.Dict.Name("Type") != "XRef" {
		return nil, malformed("no cross-reference section at %d", off)
	}
	data, err := f.decode(st)
	if err != nil {
		return nil, err
	}
	w, ok := st.Dict["W"].(Array)
	if !ok || len(w) != 3 {
		return nil, malformed("bad /W in cross-reference stream")
	}
	var ws [3]int
	total := 0
	for i, x := range w {
		v, ok := x.(int64)
		if !ok || v < 0 || v > 8 {
			return nil, malformed("bad /W value")
		}
		ws[i] = int(v)
		total += int(v)
	}
	if total == 0 {
		return nil, malformed("zero-width cross-reference entries")
	}
	size, _ := st.Dict["Size"].(int64)
	index := Array{int64(0), size}
	if idx, ok := st.Dict["Index"].(Array); ok {
		index = idx
	}
	s := &Section{Offset: off, entries: map[int64]entry{}, Trailer: st.Dict}
	pos := 0
	for i := 0; i+1 < len(index); i += 2 {
		first, ok1 := index[i].(int64)
		count, ok2 := index[i+1].(int64)
		if !ok1 || !ok2 || first < 0 || count < 0 || first+count > maxObjNum {
			return nil, malformed("bad /Index")
		}
		for k := int64(0); k < count; k++ {
			if pos+total > len(data) {
				return nil, malformed("cross-reference stream too short")
			}
			var fld [3]int64
			for j := 0; j < 3; j++ {
				for b := 0; b < ws[j]; b++ {
					fld[j] = fld[j]<<8 | int64(data[pos])
					pos++
				}
			}
			if ws[0] == 0 {
				fld[0] = 1
			}
			if fld[0] > 2 {
				continue
			}
			s.entries[first+k] = entry{typ: byte(fld[0]), off: fld[1], gen: fld[2]}
		}
	}
	return s, nil
}

// readObjectAt parses "n g obj ... endobj" at off. lookup resolves an
// indirect /Length (nil: only direct lengths).
func (f *File) readObjectAt(off int64, lookup func(Ref) (Object, error), depth int) (Ref, Object, error) {
	if off < 0 || off >= f.size {
		return Ref{}, nil, malformed("object offset %d out of range", off)
	}
	// Lend the File's read-ahead buffer to this lexer; a nested read (an
	// indirect /Length) gets its own.
	br := f.br
	f.br = nil
	defer func() { f.br = br }()
	l := newLexerWith(br, f.r, f.size, off)
	if br == nil {
		br = l.br
	}
	a, err1 := l.next()
	b, err2 := l.next()
	c, err3 := l.next()
	if err1 != nil || err2 != nil || err3 != nil || a.kind != tInt || b.kind != tInt || c.kind != tKeyword || c.s != "obj" {
		return Ref{}, nil, malformed("no object header at %d", off)
	}
	ref := Ref{Num: a.i, Gen: b.i}
	o, err := l.object(0)
	if err != nil {
		return ref, nil, err
	}
	d, ok := o.(Dict)
	if !ok {
		return ref, o, nil
	}
	t, err := l.next()
	if err != nil || t.kind != tKeyword || t.s != "stream" {
		return ref, d, nil
	}
	// The keyword is followed by CRLF or LF.
	ch, err := l.readByte()
	if err == nil && ch == '\r' {
		ch, err = l.readByte()
	}
	if err != nil || ch != '\n' {
		l.unread()
	}
	dataOff := l.pos
	var length int64 = -1
	switch v := d["Length"].(type) {
	case int64:
		length = v
	case Ref:
		if lookup != nil && depth < maxRefChain {
			if lo, err := lookup(v); err == nil {
				if n, ok := lo.(int64); ok {
					length = n
				}
			}
		}
	}
	if length < 0 || dataOff+length > f.size || !f.endstreamAt(dataOff+length) {
		length = f.findEndstream(dataOff)
		if length < 0 {
			return ref, nil, malformed("stream at %d without endstream", off)
		}
	}
	return ref, &Stream{Dict: d, Offset: dataOff, Length: length}, nil
}

func (f *File) endstreamAt(pos int64) bool {
	buf := make([]byte, 12)
	n, _ := f.r.ReadAt(buf, pos)
	return bytes.HasPrefix(bytes.TrimLeft(buf[:n], "\r\n \t"), []byte("endstream"))
}

func (f *File) findEndstream(start int64) int64 {
	const chunk = 64 << 10
	buf := make([]byte, chunk+9)
	for pos := start; pos < f.size && pos-start < maxDecodedLen; pos += chunk {
		n, _ := f.r.ReadAt(buf, pos)
		if n <= 0 {
			break
		}
		if i := bytes.Index(buf[:n], []byte("endstream")); i >= 0 {
			end := pos + int64(i)
			// Trim the EOL before endstream.
			tail := make([]byte, 2)
			if end-start >= 2 {
				f.r.ReadAt(tail, end-2) //nolint:errcheck // best effort
				if tail[1] == '\n' {
					end--
					if tail[0] == '\r' {
						end--
					}
				} else if tail[1] == '\r' {
					end--
				}
			}
			return end - start
		}
	}
	return -1
}

// RawStream returns a stream's raw (undecoded) bytes.
func (f *File) RawStream(s *Stream) ([]byte, error) {
	if s.Length < 0 || s.Length > maxDecodedLen || s.Offset+s.Length > f.size {
		return nil, malformed("stream length out of range")
	}
	buf := make([]byte, s.Length)
	if _, err := f.r.ReadAt(buf, s.Offset); err != nil && err != io.EOF {
		return nil, err
	}
	return buf, nil
}

// Decode returns a stream's decoded data (FlateDecode with PNG predictors,
// or no filter).
func (f *File) Decode(s *Stream) ([]byte, error) { return f.decode(s) }

func (f *File) decode(s *Stream) ([]byte, error) {
	raw, err := f.RawStream(s)
	if err != nil {
		return nil, err
	}
	filters := []Object{}
	parms := []Object{}
	switch v := s.Dict["Filter"].(type) {
	case Name:
		filters = append(filters, v)
		parms = append(parms, s.Dict["DecodeParms"])
	case Array:
		filters = v
		if p, ok := s.Dict["DecodeParms"].(Array); ok {
			parms = p
		}
	}
	data := raw
	for i, fl := range filters {
		name, _ := fl.(Name)
		var parm Dict
		if i < len(parms) {
			parm, _ = parms[i].(Dict)
		}
		switch name {
		case "FlateDecode", "Fl":
			zr, err := zlib.NewReader(bytes.NewReader(data))
			if err != nil {
				return nil, fmt.Errorf("%w: flate: %v", ErrMalformed, err)
			}
			out, err := io.ReadAll(io.LimitReader(zr, maxDecodedLen+1))
			if err != nil && !errors.Is(err, io.ErrUnexpectedEOF) {
				return nil, fmt.Errorf("%w: flate: %v", ErrMalformed, err)
			}
			if len(out) > maxDecodedLen {
				return nil, malformed("decoded stream too large")
			}
			data, err = unpredict(out, parm)
			if err != nil {
				return nil, err
			}
		default:
			return nil, malformed("unsupported filter /%s", name)
		}
	}
	return data, nil
}

func unpredict(data []byte, parm Dict) ([]byte, error) {
	pred, _ := parm["Predictor"].(int64)
	if pred < 10 {
		return data, nil
	}
	cols, _ := parm["Columns"].(int64)
	if cols <= 0 {
		cols = 1
	}
	colors, _ := parm["Colors"].(int64)
	if colors <= 0 {
		colors = 1
	}
	bpc, _ := parm["BitsPerComponent"].(int64)
	if bpc <= 0 {
		bpc = 8
	}
	if cols > 1<<20 || colors > 32 || bpc > 16 {
		return nil, malformed("bad predictor parameters")
	}
	bpp := int((colors*bpc + 7) / 8)
	row := int((cols*colors*bpc + 7) / 8)
	if row <= 0 || row > len(data) {
		return nil, malformed("predictor row longer than the stream")
	}
	var out []byte
	prev := make([]byte, row)
	for len(data) > 0 {
		if len(data) < row+1 {
			break
		}
		ft := data[0]
		cur := append([]byte{}, data[1:row+1]...)
		data = data[row+1:]
		for i := 0; i < row; i++ {
			var left, up, ul byte
			if i >= bpp {
				left = cur[i-bpp]
				ul = prev[i-bpp]
			}
			up = prev[i]
			switch ft {
			case 1:
				cur[i] += left
			case 2:
				cur[i] += up
			case 3:
				cur[i] += byte((int(left) + int(up)) / 2)
			case 4:
				cur[i] += paeth(left, up, ul)
			}
		}
		out = append(out, cur...)
		prev = cur
	}
	return out, nil
}

func paeth(a, b, c byte) byte {
	p := int(a) + int(b) - int(c)
	pa, pb, pc := abs(p-int(a)), abs(p-int(b)), abs(p-int(c))
	if pa <= pb && pa <= pc {
		return a
	}
	if pb <= pc {
		return b
	}
	return c
}

func abs(x int) int {
	if x < 0 {
		return -x
	}
	return x
}
