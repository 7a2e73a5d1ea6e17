package pdfdoc

import (
	"bytes"
	"compress/zlib"
	"fmt"
	"io"
	"sort"
	"strconv"
)

// AppendObject appends the PDF syntax of o to b.
func AppendObject(b []byte, o Object) []byte {
	switch v := o.(type) {
	case nil:
		return append(b, "null"...)
	case bool:
		if v {
			return append(b, "true"...)
		}
		return append(b, "false"...)
	case int:
		return strconv.AppendInt(b, int64(v), 10)
	case int64:
		return strconv.AppendInt(b, v, 10)
	case float64:
		return strconv.AppendFloat(b, v, 'f', -1, 64)
	case Name:
		b = append(b, '/')
		for i := 0; i < len(v); i++ {
			c := v[i]
			if c <= ' ' || c >= 0x7f || c == '#' || isDelim(int(c)) {
				b = append(b, '#', "0123456789ABCDEF"[c>>4], "0123456789ABCDEF"[c&15])
				continue
			}
			b = append(b, c)
		}
		return b
	case String:
		b = append(b, '(')
		for _, c := range []byte(v) {
			switch c {
			case '(', ')', '\\':
				b = append(b, '\\', c)
			case '\r':
				b = append(b, '\\', 'r')
			case '\n':
				b = append(b, '\\', 'n')
			default:
				b = append(b, c)
			}
		}
		return append(b, ')')
	case HexString:
		b = append(b, '<')
		for _, c := range []byte(v) {
			b = append(b, "0123456789ABCDEF"[c>>4], "0123456789ABCDEF"[c&15])
		}
		return append(b, '>')
	case Array:
		b = append(b, '[')
		for i, e := range v {
			if i > 0 {
				b = append(b, ' ')
			}
			b = AppendObject(b, e)
		}
		return append(b, ']')
	case Dict:
		keys := make([]string, 0, len(v))
		for k := range v {
			keys = append(keys, string(k))
		}
		sort.Strings(keys)
		b = append(b, "<<"...)
		for _, k := range keys {
			b = AppendObject(b, Name(k))
			b = append(b, ' ')
			b = AppendObject(b, v[Name(k)])
		}
		return append(b, ">>"...)
	case Ref:
		b = strconv.AppendInt(b, int64(v.Num), 10)
		b = append(b, ' ')
		b = strconv.AppendInt(b, int64(v.Gen), 10)
		return append(b, " R"...)
	case Raw:
		return append(b, v...)
	}
	return append(b, "null"...)
}

// Update builds an incremental update: new and changed objects, then a
// cross-reference section (table or stream, like the file's newest one)
// with /Prev pointing at the previous section, then startxref and %%EOF.
// The update is assembled in memory; the original bytes are never touched.
type Update struct {
	rd      *Reader
	base    int64 // size of the file the update is appended to
	buf     bytes.Buffer
	next    int
	offsets map[int]int64
	gens    map[int]int
}

// NewUpdate starts an incremental update to the file rd reads.
func NewUpdate(rd *Reader) *Update {
	u := &Update{rd: rd, base: rd.size, next: rd.NextObjectNumber(), offsets: map[int]int64{}, gens: map[int]int{}}
	// The original may not end with an end-of-line after %%EOF.
	u.buf.WriteByte('\n')
	return u
}

// Alloc reserves a new object number.
func (u *Update) Alloc() Ref {
	r := Ref{Num: u.next}
	u.next++
	return r
}

// Offset returns the absolute file offset corresponding to the current end
// of the update.
func (u *Update) Offset() int64 { return u.base + int64(u.buf.Len()) }

// Grow makes room for n more bytes of the update.
func (u *Update) Grow(n int) { u.buf.Grow(n) }

// WriteObjectFunc writes "ref obj", the body appendBody appends to the
// slice it is given (about n bytes, written in place), and "endobj". It
// returns the absolute offset of the body's first byte.
func (u *Update) WriteObjectFunc(ref Ref, n int, appendBody func([]byte) []byte) int64 {
	u.begin(ref)
	at := u.Offset()
	u.buf.Grow(n + len("\nendobj\n"))
	u.buf.Write(appendBody(u.buf.AvailableBuffer()))
	u.buf.WriteString("\nendobj\n")
	return at
}

// WriteObject writes "ref obj o endobj" and returns the absolute offset of
// the first byte of o.
func (u *Update) WriteObject(ref Ref, o Object) int64 {
	u.begin(ref)
	at := u.Offset()
	if r, ok := o.(Raw); ok {
		u.buf.Write(r)
	} else {
		u.buf.Write(AppendObject(u.buf.AvailableBuffer(), o))
	}
	u.buf.WriteString("\nendobj\n")
	return at
}

// WriteStream writes a stream object with the given dictionary and raw
// data; /Length is set from data. With compress, data is Flate-encoded.
func (u *Update) WriteStream(ref Ref, d Dict, data []byte, compress bool) error {
	d = d.Clone()
	if compress {
		var z bytes.Buffer
		zw := zlib.NewWriter(&z)
		if _, err := zw.Write(data); err != nil {
			return err
		}
		if err := zw.Close(); err != nil {
			return err
		}
		data = z.Bytes()
		d["Filter"] = Name("FlateDecode")
	}
	d["Length"] = int64(len(data))
	u.begin(ref)
	u.buf.Write(AppendObject(nil, d))
	u.buf.WriteString("\nstream\n")
	u.buf.Write(data)
	u.buf.WriteString("\nendstream\nendobj\n")
	return nil
}

func (u *Update) begin(ref Ref) {
	u.offsets[ref.Num] = u.Offset()
	u.gens[ref.Num] = ref.Gen
	b := strconv.AppendInt(u.buf.AvailableBuffer(), int64(ref.Num), 10)
	b = append(b, ' ')
	b = strconv.AppendInt(b, int64(ref.Gen), 10)
	u.buf.Write(append(b, " obj\n"...))
}

// Finish writes the cross-reference section (a table, or a stream when the
// file's newest section is one) and the trailer, which carries /Root, /Info
// and /ID over and points /Prev at the previous section. It returns the
// complete update.
func (u *Update) Finish() ([]byte, error) {
	nums := make([]int, 0, len(u.offsets)+1)
	for n := range u.offsets {
		nums = append(nums, n)
	}
	trailer := Dict{"Size": int64(u.next), "Prev": u.rd.StartXref}
	for _, k := range []Name{"Root", "Info", "ID"} {
		if v, ok := u.rd.Trailer[k]; ok {
			trailer[k] = v
		}
	}
	if !u.rd.XrefStream {
		sort.Ints(nums)
		xrefAt := u.Offset()
		u.buf.WriteString("xref\n")
		for i := 0; i < len(nums); {
			j := i
			for j+1 < len(nums) && nums[j+1] == nums[j]+1 {
				j++
			}
			b := strconv.AppendInt(u.buf.AvailableBuffer(), int64(nums[i]), 10)
			b = append(b, ' ')
			b = strconv.AppendInt(b, int64(j-i+1), 10)
			u.buf.Write(append(b, '\n'))
			for k := i; k <= j; k++ {
				b := appendPadded(u.buf.AvailableBuffer(), u.offsets[nums[k]], 10)
				b = append(b, ' ')
				b = appendPadded(b, int64(u.gens[nums[k]]), 5)
				u.buf.Write(append(b, " n\r\n"...))
			}
			i = j + 1
		}
		u.buf.WriteString("trailer\n")
		u.buf.Write(AppendObject(nil, trailer))
		fmt.Fprintf(&u.buf, "\nstartxref\n%d\n%%%%EOF\n", xrefAt)
		return u.buf.Bytes(), nil
	}
	// Cross-reference stream: it lists itself too.
	self := u.Alloc()
	trailer["Size"] = int64(u.next)
	xrefAt := u.Offset()
	u.offsets[self.Num] = xrefAt
	nums = append(nums, self.Num)
	sort.Ints(nums)
	width := 4
	if xrefAt >= 1<<32 {
		width = 8
	}
	var index Array
	var data []byte
	for i := 0; i < len(nums); {
		j := i
		for j+1 < len(nums) && nums[j+1] == nums[j]+1 {
			j++
		}
		index = append(index, int64(nums[i]), int64(j-i+1))
		for k := i; k <= j; k++ {
			off := u.offsets[nums[k]]
			data = append(data, 1)
			for s := width - 1; s >= 0; s-- {
				data = append(data, byte(off>>(8*s)))
			}
			g := u.gens[nums[k]]
			data = append(data, byte(g>>8), byte(g))
		}
		i = j + 1
	}
	trailer["Type"] = Name("XRef")
	trailer["W"] = Array{int64(1), int64(width), int64(2)}
	trailer["Index"] = index
	u.gens[self.Num] = 0
	fmt.Fprintf(&u.buf, "%d 0 obj\n", self.Num)
	if err := u.writeStreamBody(trailer, data); err != nil {
		return nil, err
	}
	fmt.Fprintf(&u.buf, "startxref\n%d\n%%%%EOF\n", xrefAt)
	return u.buf.Bytes(), nil
}

// appendPadded appends v in decimal, zero-padded to width digits.
func appendPadded(b []byte, v int64, width int) []byte {
	var d [20]byte
	s := strconv.AppendInt(d[:0], v, 10)
	for i := len(s); i < width; i++ {
		b = append(b, '0')
	}
	return append(b, s...)
}

func (u *Update) writeStreamBody(d Dict, data []byte) error {
	var z bytes.Buffer
	zw := zlib.NewWriter(&z)
	if _, err := zw.Write(data); err != nil {
		return err
	}
	if err := zw.Close(); err != nil {
		return err
	}
	d["Filter"] = Name("FlateDecode")
	d["Length"] = int64(z.Len())
	u.buf.Write(AppendObject(nil, d))
	u.buf.WriteString("\nstream\n")
	u.buf.Write(z.Bytes())
	u.buf.WriteString("\nendstream\nendobj\n")
	return nil
}

// Concat is an io.ReaderAt over a file followed by appended bytes: the
// original file plus one or more incremental updates held in memory.
type Concat struct {
	Base     io.ReaderAt
	BaseSize int64
	Tail     []byte
}

// ReadAt implements io.ReaderAt.
func (c *Concat) ReadAt(p []byte, off int64) (int, error) {
	if off < 0 {
		return 0, io.EOF
	}
	n := 0
	if off < c.BaseSize {
		want := p
		if int64(len(want)) > c.BaseSize-off {
			want = want[:c.BaseSize-off]
		}
		m, err := c.Base.ReadAt(want, off)
		n += m
		if m < len(want) {
			if err == nil {
				err = io.ErrUnexpectedEOF
			}
			return n, err
		}
		off += int64(m)
		p = p[m:]
	}
	if len(p) == 0 {
		return n, nil
	}
	t := off - c.BaseSize
	if t >= int64(len(c.Tail)) {
		return n, io.EOF
	}
	m := copy(p, c.Tail[t:])
	n += m
	if m < len(p) {
		return n, io.EOF
	}
	return n, nil
}

// Size returns the total size.
func (c *Concat) Size() int64 { return c.BaseSize + int64(len(c.Tail)) }

// Slice implements Slicer: bytes of the tail, or of the base when it is a
// Slicer, as long as the range does not straddle the two.
func (c *Concat) Slice(off int64, n int) []byte {
	if off < 0 || n <= 0 {
		return nil
	}
	if off >= c.BaseSize {
		t := off - c.BaseSize
		if t >= int64(len(c.Tail)) {
			return nil
		}
		return c.Tail[t:min(int64(len(c.Tail)), t+int64(n))]
	}
	sl, ok := c.Base.(Slicer)
	if !ok {
		return nil
	}
	return sl.Slice(off, int(min(int64(n), c.BaseSize-off)))
}
