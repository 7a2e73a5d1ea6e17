package pdfdoc

import (
	"bytes"
	"compress/zlib"
	"fmt"
	"io"
)

// Limits that keep hostile input from exhausting memory or time.
const (
	maxXrefSections = 4096
	maxObjects      = 1 << 24
	maxDecoded      = 64 << 20 // decoded size of xref and object streams
	maxResolve      = 32
)

type xrefEntry struct {
	kind   int   // 1: in file at offset; 2: in object stream
	offset int64 // kind 1: offset; kind 2: object stream number
	index  int   // kind 2: index inside the object stream
	gen    int
}

// Reader gives access to the objects of a PDF file.
type Reader struct {
	r    io.ReaderAt
	size int64

	// Version is the header version ("1.7", "2.0").
	Version string
	// Trailer is the trailer dictionary of the newest revision (for an
	// xref stream, its stream dictionary).
	Trailer Dict
	// StartXref is the offset of the newest cross-reference section.
	StartXref int64
	// XrefStream reports that the newest section is a cross-reference stream.
	XrefStream bool

	xref    map[int]xrefEntry
	objStms map[int]*objStm
}

type objStm struct {
	data    []byte
	offsets []int64
	nums    []int
}

// Open reads the cross-reference information of the PDF held by r.
func Open(r io.ReaderAt, size int64) (rd *Reader, err error) {
	defer func() {
		if p := recover(); p != nil {
			rd, err = nil, malformed("internal error: %v", p)
		}
	}()
	head := make([]byte, 1024)
	n, _ := r.ReadAt(head, 0)
	head = head[:n]
	i := bytes.Index(head, []byte("%PDF-"))
	if i < 0 || len(head) < i+8 {
		return nil, ErrNotPDF
	}
	rd = &Reader{r: r, size: size, Version: string(head[i+5 : i+8]), xref: map[int]xrefEntry{}, objStms: map[int]*objStm{}}

	tail := int64(2048)
	if tail > size {
		tail = size
	}
	buf := make([]byte, tail)
	if _, err := r.ReadAt(buf, size-tail); err != nil && err != io.EOF {
		return nil, malformed("reading the end of the file: %v", err)
	}
	j := bytes.LastIndex(buf, []byte("startxref"))
	if j < 0 {
		return nil, malformed("no startxref")
	}
	lx := newBytesLexer(buf[j+len("startxref"):])
	t, err := lx.token()
	off, ok := t.(int64)
	if err != nil || !ok || off <= 0 || off >= size {
		return nil, malformed("bad startxref value")
	}
	rd.StartXref = off
	if err := rd.readXrefChain(off); err != nil {
		return nil, err
	}
	if _, enc := rd.Trailer["Encrypt"]; enc {
		return nil, ErrEncrypted
	}
	if _, ok := rd.Trailer["Root"].(Ref); !ok {
		return nil, malformed("trailer has no /Root reference")
	}
	return rd, nil
}

// Size returns the size of the underlying file.
func (rd *Reader) Size() int64 { return rd.size }

// NextObjectNumber returns the first object number an update may use: the
// highest object number known plus one, at least the trailer's /Size.
func (rd *Reader) NextObjectNumber() int {
	n := 0
	if s, ok := rd.Trailer.Int("Size"); ok && s > 0 && s < maxObjects {
		n = int(s)
	}
	for k := range rd.xref {
		if k+1 > n {
			n = k + 1
		}
	}
	return n
}

func (rd *Reader) readXrefChain(off int64) error {
	seen := map[int64]bool{}
	first := true
	for count := 0; off > 0; count++ {
		if count > maxXrefSections || seen[off] {
			return malformed("cross-reference chain loops")
		}
		seen[off] = true
		if off >= rd.size {
			return malformed("cross-reference offset %d beyond the end", off)
		}
		lx := newLexer(rd.r, rd.size, off)
		t, err := lx.token()
		if err != nil {
			return malformed("reading cross-reference at %d: %v", off, err)
		}
		var trailer Dict
		if t == keyword("xref") {
			trailer, err = rd.readXrefTable(lx)
			if err != nil {
				return err
			}
			if stm, ok := trailer.Int("XRefStm"); ok && stm > 0 && !seen[stm] {
				seen[stm] = true
				if _, err := rd.readXrefStream(stm); err != nil {
					return err
				}
			}
		} else {
			trailer, err = rd.readXrefStream(off)
			if err != nil {
				return err
			}
			if first {
				rd.XrefStream = true
			}
		}
		if first {
			rd.Trailer = trailer
			first = false
		}
		prev, _ := trailer.Int("Prev")
		off = prev
	}
	return nil
}

func (rd *Reader) readXrefTable(lx *lexer) (Dict, error) {
	for {
		t, err := lx.token()
		if err != nil {
			return nil, malformed("xref table: %v", err)
		}
		if t == keyword("trailer") {
			break
		}
		start, ok1 := t.(int64)
		t2, err := lx.token()
		count, ok2 := t2.(int64)
		if err != nil || !ok1 || !ok2 || start < 0 || count < 0 || start+count > maxObjects {
			return nil, malformed("bad xref subsection header")
		}
		for i := int64(0); i < count; i++ {
			a, e1 := lx.token()
			b, e2 := lx.token()
			c, e3 := lx.token()
			off, ok1 := a.(int64)
			gen, ok2 := b.(int64)
			if e1 != nil || e2 != nil || e3 != nil || !ok1 || !ok2 || (c != keyword("n") && c != keyword("f")) {
				return nil, malformed("bad xref entry")
			}
			num := int(start + i)
			if _, have := rd.xref[num]; have {
				continue // a newer section already defined it
			}
			if c == keyword("f") {
				rd.xref[num] = xrefEntry{kind: 0, gen: int(gen)}
				continue
			}
			rd.xref[num] = xrefEntry{kind: 1, offset: off, gen: int(gen)}
		}
	}
	o, err := lx.object(0)
	if err != nil {
		return nil, malformed("trailer: %v", err)
	}
	d, ok := o.(Dict)
	if !ok {
		return nil, malformed("trailer is not a dictionary")
	}
	return d, nil
}

func (rd *Reader) readXrefStream(off int64) (Dict, error) {
	_, obj, err := rd.readObjectAt(off, 0)
	if err != nil {
		return nil, err
	}
	s, ok := obj.(*Stream)
	if !ok || s.Dict.Name("Type") != "XRef" {
		return nil, malformed("no cross-reference stream at %d", off)
	}
	data, err := rd.StreamData(s, maxDecoded)
	if err != nil {
		return nil, err
	}
	wArr, _ := s.Dict["W"].(Array)
	if len(wArr) != 3 {
		return nil, malformed("xref stream /W")
	}
	var w [3]int
	total := 0
	for i, v := range wArr {
		n, ok := v.(int64)
		if !ok || n < 0 || n > 8 {
			return nil, malformed("xref stream /W")
		}
		w[i] = int(n)
		total += int(n)
	}
	if total == 0 {
		return nil, malformed("xref stream /W")
	}
	size, _ := s.Dict.Int("Size")
	index := Array{int64(0), size}
	if ix, ok := s.Dict["Index"].(Array); ok {
		index = ix
	}
	if len(index)%2 != 0 {
		return nil, malformed("xref stream /Index")
	}
	pos := 0
	for k := 0; k < len(index); k += 2 {
		start, ok1 := index[k].(int64)
		count, ok2 := index[k+1].(int64)
		if !ok1 || !ok2 || start < 0 || count < 0 || start+count > maxObjects {
			return nil, malformed("xref stream /Index")
		}
		for i := int64(0); i < count; i++ {
			if pos+total > len(data) {
				return nil, malformed("xref stream too short")
			}
			f := [3]int64{1, 0, 0}
			for j := 0; j < 3; j++ {
				if w[j] == 0 {
					continue
				}
				var v int64
				for _, b := range data[pos : pos+w[j]] {
					v = v<<8 | int64(b)
				}
				f[j] = v
				pos += w[j]
			}
			num := int(start + i)
			if _, have := rd.xref[num]; have {
				continue
			}
			switch f[0] {
			case 0:
				rd.xref[num] = xrefEntry{kind: 0}
			case 1:
				rd.xref[num] = xrefEntry{kind: 1, offset: f[1], gen: int(f[2])}
			case 2:
				rd.xref[num] = xrefEntry{kind: 2, offset: f[1], index: int(f[2])}
			}
		}
	}
	return s.Dict, nil
}

// readObjectAt parses "n g obj ... endobj" at off.
func (rd *Reader) readObjectAt(off int64, depth int) (Ref, Object, error) {
	if off < 0 || off >= rd.size {
		return Ref{}, nil, malformed("object offset %d out of range", off)
	}
	lx := newLexer(rd.r, rd.size, off)
	a, e1 := lx.token()
	b, e2 := lx.token()
	c, e3 := lx.token()
	num, ok1 := a.(int64)
	gen, ok2 := b.(int64)
	if e1 != nil || e2 != nil || e3 != nil || !ok1 || !ok2 || c != keyword("obj") {
		return Ref{}, nil, malformed("no object header at %d", off)
	}
	ref := Ref{Num: int(num), Gen: int(gen)}
	obj, err := lx.object(0)
	if err != nil {
		return ref, nil, malformed("object %d: %v", num, err)
	}
	t, err := lx.token()
	if err != nil || t != keyword("stream") {
		return ref, obj, nil
	}
	d, ok := obj.(Dict)
	if !ok {
		return ref, nil, malformed("object %d: stream without dictionary", num)
	}
	if lx.peek() == '\r' {
		lx.pos++
	}
	if lx.peek() == '\n' {
		lx.pos++
	}
	start := lx.pos
	length, err := rd.length(d["Length"], depth)
	if err != nil {
		return ref, nil, fmt.Errorf("object %d: %w", num, err)
	}
	if length < 0 || start+length > rd.size {
		return ref, nil, malformed("object %d: stream length out of range", num)
	}
	return ref, &Stream{Dict: d, Offset: start, Length: length}, nil
}

func (rd *Reader) length(o Object, depth int) (int64, error) {
	if r, ok := o.(Ref); ok {
		if depth > 2 {
			return 0, malformed("indirect /Length too deep")
		}
		v, err := rd.get(r, depth+1)
		if err != nil {
			return 0, err
		}
		o = v
	}
	n, ok := o.(int64)
	if !ok {
		return 0, malformed("stream /Length is not an integer")
	}
	return n, nil
}

// Get returns the object ref points to (nil for a free or missing object).
func (rd *Reader) Get(ref Ref) (o Object, err error) {
	defer func() {
		if p := recover(); p != nil {
			o, err = nil, malformed("internal error: %v", p)
		}
	}()
	return rd.get(ref, 0)
}

func (rd *Reader) get(ref Ref, depth int) (Object, error) {
	e, ok := rd.xref[ref.Num]
	if !ok || e.kind == 0 {
		return nil, nil
	}
	if e.kind == 1 {
		got, obj, err := rd.readObjectAt(e.offset, depth)
		if err != nil {
			return nil, err
		}
		if got.Num != ref.Num {
			return nil, malformed("xref for object %d points at object %d", ref.Num, got.Num)
		}
		return obj, nil
	}
	stm, err := rd.objStm(int(e.offset), depth)
	if err != nil {
		return nil, err
	}
	if e.index < 0 || e.index >= len(stm.offsets) || stm.nums[e.index] != ref.Num {
		return nil, malformed("object %d not in its object stream", ref.Num)
	}
	start := stm.offsets[e.index]
	if start < 0 || start > int64(len(stm.data)) {
		return nil, malformed("object stream offset out of range")
	}
	lx := newBytesLexer(stm.data[start:])
	o, err := lx.object(0)
	if err != nil {
		return nil, malformed("object %d in object stream: %v", ref.Num, err)
	}
	return o, nil
}

func (rd *Reader) objStm(num, depth int) (*objStm, error) {
	if s, ok := rd.objStms[num]; ok {
		return s, nil
	}
	e, ok := rd.xref[num]
	if !ok || e.kind != 1 || depth > 1 {
		return nil, malformed("object stream %d not found", num)
	}
	_, obj, err := rd.readObjectAt(e.offset, depth+1)
	if err != nil {
		return nil, err
	}
	s, ok := obj.(*Stream)
	if !ok || s.Dict.Name("Type") != "ObjStm" {
		return nil, malformed("object %d is not an object stream", num)
	}
	data, err := rd.StreamData(s, maxDecoded)
	if err != nil {
		return nil, err
	}
	n, _ := s.Dict.Int("N")
	first, _ := s.Dict.Int("First")
	if n < 0 || n > 1<<20 || first < 0 || first > int64(len(data)) {
		return nil, malformed("object stream %d header", num)
	}
	lx := newBytesLexer(data[:first])
	stm := &objStm{data: data[first:]}
	for i := int64(0); i < n; i++ {
		a, e1 := lx.token()
		b, e2 := lx.token()
		on, ok1 := a.(int64)
		oo, ok2 := b.(int64)
		if e1 != nil || e2 != nil || !ok1 || !ok2 {
			return nil, malformed("object stream %d header", num)
		}
		stm.nums = append(stm.nums, int(on))
		stm.offsets = append(stm.offsets, oo)
	}
	rd.objStms[num] = stm
	return stm, nil
}

// Resolve follows references until it reaches a direct object.
func (rd *Reader) Resolve(o Object) (Object, error) {
	for i := 0; i < maxResolve; i++ {
		r, ok := o.(Ref)
		if !ok {
			return o, nil
		}
		var err error
		if o, err = rd.Get(r); err != nil {
			return nil, err
		}
	}
	return nil, malformed("reference chain too long")
}

// ResolveDict resolves o and returns it as a dictionary (the dictionary of
// a stream included); nil when it is not one.
func (rd *Reader) ResolveDict(o Object) (Dict, error) {
	v, err := rd.Resolve(o)
	if err != nil {
		return nil, err
	}
	switch d := v.(type) {
	case Dict:
		return d, nil
	case *Stream:
		return d.Dict, nil
	}
	return nil, nil
}

// RawStream returns a reader over the raw (encoded) data of s.
func (rd *Reader) RawStream(s *Stream) io.Reader {
	if s.Data != nil {
		return bytes.NewReader(s.Data)
	}
	return io.NewSectionReader(rd.r, s.Offset, s.Length)
}

// StreamData returns the decoded data of s (FlateDecode with PNG or TIFF
// predictors, or no filter), refusing to produce more than limit bytes.
func (rd *Reader) StreamData(s *Stream, limit int64) ([]byte, error) {
	var filter Name
	var parms Dict
	switch f := s.Dict["Filter"].(type) {
	case Name:
		filter = f
		parms, _ = s.Dict["DecodeParms"].(Dict)
	case Array:
		if len(f) > 1 {
			return nil, malformed("unsupported filter chain")
		}
		if len(f) == 1 {
			filter, _ = f[0].(Name)
			if p, ok := s.Dict["DecodeParms"].(Array); ok && len(p) == 1 {
				parms, _ = p[0].(Dict)
			}
		}
	}
	raw := rd.RawStream(s)
	var r io.Reader = raw
	switch filter {
	case "":
	case "FlateDecode":
		z, err := zlib.NewReader(raw)
		if err != nil {
			return nil, malformed("flate stream: %v", err)
		}
		r = z
	default:
		return nil, malformed("unsupported filter %s", filter)
	}
	data, err := io.ReadAll(io.LimitReader(r, limit+1))
	if err != nil && len(data) == 0 {
		return nil, malformed("decoding stream: %v", err)
	}
	if int64(len(data)) > limit {
		return nil, malformed("stream larger than %d bytes", limit)
	}
	pred, _ := parms.Int("Predictor")
	if pred >= 10 {
		cols, ok := parms.Int("Columns")
		if !ok {
			cols = 1
		}
		return unpredictPNG(data, int(cols))
	} else if pred > 1 {
		return nil, malformed("unsupported predictor %d", pred)
	}
	return data, nil
}

func unpredictPNG(data []byte, cols int) ([]byte, error) {
	if cols <= 0 || cols > 1<<16 {
		return nil, malformed("bad predictor columns")
	}
	row := cols + 1
	if len(data)%row != 0 {
		return nil, malformed("predicted data is not whole rows")
	}
	out := make([]byte, 0, len(data)/row*cols)
	prev := make([]byte, cols)
	for i := 0; i < len(data); i += row {
		cur := append([]byte(nil), data[i+1:i+row]...)
		for j := range cur {
			var left, up, ul byte
			if j > 0 {
				left, ul = cur[j-1], prev[j-1]
			}
			up = prev[j]
			switch data[i] {
			case 0:
			case 1:
				cur[j] += left
			case 2:
				cur[j] += up
			case 3:
				cur[j] += byte((int(left) + int(up)) / 2)
			case 4:
				cur[j] += paeth(left, up, ul)
			default:
				return nil, malformed("bad PNG predictor %d", data[i])
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
	} else if pb <= pc {
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
