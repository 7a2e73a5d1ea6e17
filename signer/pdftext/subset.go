package pdftext

import (
	"encoding/binary"
	"fmt"
	"sort"

	"github.com/go-text/typesetting/font"
	ot "github.com/go-text/typesetting/font/opentype"
)

// Flags of a composite glyph's component (OpenType 'glyf').
const (
	argsAreWords   = 0x0001
	haveScale      = 0x0008
	moreComponents = 0x0020
	haveXYScale    = 0x0040
	haveTwoByTwo   = 0x0080
)

// maxSubsetGlyphs bounds a subset (CIDs are 16 bits; appearances need few).
const maxSubsetGlyphs = 4096

// tables holds the raw tables a subset is made from.
type tables struct {
	head, hhea, maxp, hmtx, glyf []byte
	loca                         []uint32
	numHMetrics                  int
}

func (f *Font) readTables() (*tables, error) {
	t := &tables{}
	raw := func(tag string) []byte {
		b, _ := f.ld.RawTable(ot.MustNewTag(tag))
		return b
	}
	t.head, t.hhea, t.maxp, t.hmtx, t.glyf = raw("head"), raw("hhea"), raw("maxp"), raw("hmtx"), raw("glyf")
	if len(t.head) < 54 || len(t.hhea) < 36 || len(t.maxp) < 6 {
		return nil, fmt.Errorf("%w: %s: short head, hhea or maxp table", ErrFont, f.Name)
	}
	n := int(binary.BigEndian.Uint16(t.maxp[4:]))
	t.numHMetrics = int(binary.BigEndian.Uint16(t.hhea[34:]))
	if t.numHMetrics == 0 || t.numHMetrics > n || len(t.hmtx) < 4*t.numHMetrics+2*(n-t.numHMetrics) {
		return nil, fmt.Errorf("%w: %s: bad hmtx table", ErrFont, f.Name)
	}
	loca := raw("loca")
	long := binary.BigEndian.Uint16(t.head[50:]) == 1
	t.loca = make([]uint32, n+1)
	for i := range t.loca {
		switch {
		case long && len(loca) >= 4*(i+1):
			t.loca[i] = binary.BigEndian.Uint32(loca[4*i:])
		case !long && len(loca) >= 2*(i+1):
			t.loca[i] = 2 * uint32(binary.BigEndian.Uint16(loca[2*i:]))
		default:
			return nil, fmt.Errorf("%w: %s: short loca table", ErrFont, f.Name)
		}
		if t.loca[i] > uint32(len(t.glyf)) || (i > 0 && t.loca[i] < t.loca[i-1]) {
			return nil, fmt.Errorf("%w: %s: bad loca table", ErrFont, f.Name)
		}
	}
	return t, nil
}

// glyph returns the outline data of glyph g ("" for an empty glyph).
func (t *tables) glyph(g int) []byte {
	if g < 0 || g+1 >= len(t.loca) {
		return nil
	}
	return t.glyf[t.loca[g]:t.loca[g+1]]
}

// components calls fn with the offset of each component's glyph index of
// a composite glyph (nothing for a simple one).
func components(data []byte, fn func(at int)) error {
	if len(data) < 10 || int16(binary.BigEndian.Uint16(data)) >= 0 {
		return nil
	}
	at := 10
	for {
		if at+4 > len(data) {
			return fmt.Errorf("%w: truncated composite glyph", ErrFont)
		}
		flags := binary.BigEndian.Uint16(data[at:])
		fn(at + 2)
		at += 4
		if flags&argsAreWords != 0 {
			at += 4
		} else {
			at += 2
		}
		switch {
		case flags&haveScale != 0:
			at += 2
		case flags&haveXYScale != 0:
			at += 4
		case flags&haveTwoByTwo != 0:
			at += 8
		}
		if flags&moreComponents == 0 {
			return nil
		}
	}
}

// metrics returns the advance width and left side bearing of glyph g.
func (t *tables) metrics(g int) (uint16, int16) {
	if g < t.numHMetrics {
		return binary.BigEndian.Uint16(t.hmtx[4*g:]), int16(binary.BigEndian.Uint16(t.hmtx[4*g+2:]))
	}
	adv := binary.BigEndian.Uint16(t.hmtx[4*(t.numHMetrics-1):])
	return adv, int16(binary.BigEndian.Uint16(t.hmtx[4*t.numHMetrics+2*(g-t.numHMetrics):]))
}

// subset returns a TrueType font whose glyph i is the font's glyph gids[i]
// (gids[0] must be 0, the missing-glyph box), followed by the components
// composite glyphs need; only the tables a PDF viewer uses are kept.
func (f *Font) subset(gids []font.GID) ([]byte, error) {
	t, err := f.readTables()
	if err != nil {
		return nil, err
	}
	n := len(t.loca) - 1
	order := make([]int, 0, len(gids))
	index := map[int]int{}
	add := func(g int) {
		if _, ok := index[g]; !ok && g < n {
			index[g] = len(order)
			order = append(order, g)
		}
	}
	for _, g := range gids {
		add(int(g))
	}
	for i := 0; i < len(order); i++ {
		if len(order) > maxSubsetGlyphs {
			return nil, fmt.Errorf("%w: %s: more than %d glyphs", ErrFont, f.Name, maxSubsetGlyphs)
		}
		data := t.glyph(order[i])
		if err := components(data, func(at int) { add(int(binary.BigEndian.Uint16(data[at:]))) }); err != nil {
			return nil, err
		}
	}
	var glyf []byte
	loca := make([]byte, 4*(len(order)+1))
	hmtx := make([]byte, 0, 4*len(order))
	for i, g := range order {
		binary.BigEndian.PutUint32(loca[4*i:], uint32(len(glyf)))
		start := len(glyf)
		glyf = append(glyf, t.glyph(g)...)
		data := glyf[start:]
		_ = components(data, func(at int) {
			binary.BigEndian.PutUint16(data[at:], uint16(index[int(binary.BigEndian.Uint16(data[at:]))]))
		})
		for len(glyf)%4 != 0 {
			glyf = append(glyf, 0)
		}
		adv, lsb := t.metrics(g)
		hmtx = binary.BigEndian.AppendUint16(hmtx, adv)
		hmtx = binary.BigEndian.AppendUint16(hmtx, uint16(lsb))
	}
	binary.BigEndian.PutUint32(loca[4*len(order):], uint32(len(glyf)))
	head := append([]byte(nil), t.head...)
	binary.BigEndian.PutUint32(head[8:], 0)  // checkSumAdjustment, set below
	binary.BigEndian.PutUint16(head[50:], 1) // long loca
	hhea := append([]byte(nil), t.hhea...)
	binary.BigEndian.PutUint16(hhea[34:], uint16(len(order)))
	maxp := append([]byte(nil), t.maxp...)
	binary.BigEndian.PutUint16(maxp[4:], uint16(len(order)))
	tabs := []ot.Table{
		{Tag: ot.MustNewTag("glyf"), Content: glyf}, {Tag: ot.MustNewTag("head"), Content: head},
		{Tag: ot.MustNewTag("hhea"), Content: hhea}, {Tag: ot.MustNewTag("hmtx"), Content: hmtx},
		{Tag: ot.MustNewTag("loca"), Content: loca}, {Tag: ot.MustNewTag("maxp"), Content: maxp},
	}
	// An empty (3,1) format 4 cmap: the PDF maps CIDs to glyphs itself
	// (CIDToGIDMap Identity), but font parsers want the table.
	cmap := []byte{0, 0, 0, 1, 0, 3, 0, 1, 0, 0, 0, 12,
		0, 4, 0, 24, 0, 0, 0, 2, 0, 2, 0, 0, 0, 0, 0xff, 0xff, 0, 0, 0xff, 0xff, 0, 1, 0, 0}
	tabs = append(tabs, ot.Table{Tag: ot.MustNewTag("cmap"), Content: cmap})
	for _, tag := range []string{"cvt ", "fpgm", "prep", "OS/2"} {
		if b, err := f.ld.RawTable(ot.MustNewTag(tag)); err == nil && len(b) > 0 {
			tabs = append(tabs, ot.Table{Tag: ot.MustNewTag(tag), Content: b})
		}
	}
	if post, err := f.ld.RawTable(ot.MustNewTag("post")); err == nil && len(post) >= 32 {
		p := append([]byte(nil), post[:32]...)
		binary.BigEndian.PutUint32(p, 0x00030000) // no glyph names
		tabs = append(tabs, ot.Table{Tag: ot.MustNewTag("post"), Content: p})
	}
	return writeTTF(tabs), nil
}

// writeTTF writes a TrueType file of tabs: a directory sorted by tag, each
// table at a 4-byte boundary (padding not counted in its length), and
// head.checkSumAdjustment set.
func writeTTF(tabs []ot.Table) []byte {
	sort.Slice(tabs, func(i, j int) bool { return tabs[i].Tag < tabs[j].Tag })
	n := len(tabs)
	sel := 0
	for 1<<(sel+1) <= n {
		sel++
	}
	out := make([]byte, 12+16*n)
	binary.BigEndian.PutUint32(out, 0x00010000)
	binary.BigEndian.PutUint16(out[4:], uint16(n))
	binary.BigEndian.PutUint16(out[6:], uint16(16<<sel))
	binary.BigEndian.PutUint16(out[8:], uint16(sel))
	binary.BigEndian.PutUint16(out[10:], uint16(16*n-16<<sel))
	headAt := -1
	for i, t := range tabs {
		off := len(out)
		out = append(out, t.Content...)
		for len(out)%4 != 0 {
			out = append(out, 0)
		}
		rec := out[12+16*i:]
		binary.BigEndian.PutUint32(rec, uint32(t.Tag))
		binary.BigEndian.PutUint32(rec[4:], checksum(out[off:]))
		binary.BigEndian.PutUint32(rec[8:], uint32(off))
		binary.BigEndian.PutUint32(rec[12:], uint32(len(t.Content)))
		if t.Tag == ot.MustNewTag("head") {
			headAt = off
		}
	}
	if headAt >= 0 {
		binary.BigEndian.PutUint32(out[headAt+8:], 0xB1B0AFBA-checksum(out))
	}
	return out
}

// checksum sums b (a multiple of 4 bytes long) as big-endian uint32s.
func checksum(b []byte) uint32 {
	var sum uint32
	for i := 0; i+4 <= len(b); i += 4 {
		sum += binary.BigEndian.Uint32(b[i:])
	}
	return sum
}
