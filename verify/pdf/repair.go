package pdf

import (
	"bytes"
	"regexp"
	"strconv"
)

var objHeader = regexp.MustCompile(`(?:^|[\r\n\s])(\d{1,10})\s+(\d{1,5})\s+obj\b`)

// scanObjects indexes "n g obj" headers by scanning the whole file; the
// last definition of a number wins (as an incremental update would).
func (f *File) scanObjects() map[int64]int64 {
	if f.scanned != nil {
		return f.scanned
	}
	idx := map[int64]int64{}
	const chunk = 1 << 20
	const overlap = 32
	buf := make([]byte, chunk+overlap)
	for pos := int64(0); pos < f.size; pos += chunk {
		n, _ := f.r.ReadAt(buf, pos)
		if n <= 0 {
			break
		}
		for _, m := range objHeader.FindAllSubmatchIndex(buf[:n], -1) {
			start := pos + int64(m[2])
			if m[0] >= chunk && pos+chunk < f.size {
				continue // the next chunk sees it
			}
			num, err := strconv.ParseInt(string(buf[m[2]:m[3]]), 10, 64)
			if err != nil || num > maxObjNum {
				continue
			}
			idx[num] = start
		}
	}
	f.scanned = idx
	return idx
}

// repair builds a single section from a scan when the cross-reference
// chain cannot be read.
func (f *File) repair() error {
	idx := f.scanObjects()
	s := &Section{entries: map[int64]entry{}}
	for num, off := range idx {
		s.entries[num] = entry{typ: 1, off: off}
	}
	// Trailer: the last "trailer" dictionary, else a cross-reference stream.
	var trailer Dict
	const chunk = 1 << 20
	buf := make([]byte, chunk+8)
	for pos := int64(0); pos < f.size; pos += chunk {
		n, _ := f.r.ReadAt(buf, pos)
		if n <= 0 {
			break
		}
		b := buf[:n]
		for {
			i := bytes.Index(b, []byte("trailer"))
			if i < 0 {
				break
			}
			at := pos + int64(n-len(b)) + int64(i) + 7
			l := newLexer(f.r, f.size, at)
			if o, err := l.object(0); err == nil {
				if d, ok := o.(Dict); ok && d["Root"] != nil {
					trailer = d
				}
			}
			b = b[i+7:]
		}
	}
	if trailer == nil {
		for _, off := range idx {
			if _, o, err := f.readObjectAt(off, nil, 0); err == nil {
				if st, ok := o.(*Stream); ok && st.Dict.Name("Type") == "XRef" && st.Dict["Root"] != nil {
					trailer = st.Dict
				}
			}
		}
	}
	if trailer == nil {
		return malformed("no trailer found while repairing")
	}
	delete(trailer, "Prev")
	s.Trailer = trailer
	end := f.lastEOF()
	s.Offset, s.End, s.EndEOL = end, end, end
	f.Sections = []*Section{s}
	f.Repaired = true
	return nil
}

func (f *File) lastEOF() int64 {
	n := int64(4096)
	if n > f.size {
		n = f.size
	}
	buf := make([]byte, n)
	f.r.ReadAt(buf, f.size-n) //nolint:errcheck // best effort
	if i := bytes.LastIndex(buf, []byte("%%EOF")); i >= 0 {
		return f.size - n + int64(i) + 5
	}
	return f.size
}
