package pdftext

import (
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"math"
	"strconv"
	"unicode/utf16"

	ot "github.com/go-text/typesetting/font/opentype"

	"github.com/thiqa/thiqa/signer/pdfdoc"
)

// WriteFonts writes, into u, each font the layout drew with (a TrueType
// subset of the glyphs drawn, as a Type0 font with Identity-H encoding and
// a ToUnicode map) and returns the /Font resources (/T0, /T1 …) that Draw's
// operators name.
func (l *Layout) WriteFonts(u *pdfdoc.Update) (pdfdoc.Dict, error) {
	res := pdfdoc.Dict{}
	for i, used := range l.used {
		if len(used.gids) <= 1 {
			continue
		}
		ref, err := writeFont(u, l.fonts[i], used)
		if err != nil {
			return nil, err
		}
		res[pdfdoc.Name("T"+strconv.Itoa(i))] = ref
	}
	return res, nil
}

// writeFont writes one subset font and returns the Type0 font's reference.
func writeFont(u *pdfdoc.Update, f *Font, used *usedFont) (pdfdoc.Ref, error) {
	data, err := f.subset(used.gids)
	if err != nil {
		return pdfdoc.Ref{}, err
	}
	t, err := f.readTables()
	if err != nil {
		return pdfdoc.Ref{}, err
	}
	// The subset tag: six letters from the subset's digest (ISO 32000-2 §9.9.2).
	sum := sha256.Sum256(data)
	tag := make([]byte, 6)
	for i := range tag {
		tag[i] = 'A' + sum[i]%26
	}
	name := pdfdoc.Name(string(tag) + "+" + f.Name)
	scale := 1000 / f.upem()
	fu := func(v int16) int64 { return int64(math.Round(float64(v) * scale)) }
	i16 := func(b []byte, at int) int16 { return int16(binary.BigEndian.Uint16(b[at:])) }
	ascent, descent := i16(t.hhea, 4), i16(t.hhea, 6)
	capHeight := ascent
	if os2, err := f.ld.RawTable(ot.MustNewTag("OS/2")); err == nil && len(os2) >= 90 && binary.BigEndian.Uint16(os2) >= 2 {
		capHeight = i16(os2, 88)
	}
	fileRef, descRef, cidRef, cmapRef, fontRef := u.Alloc(), u.Alloc(), u.Alloc(), u.Alloc(), u.Alloc()
	if err := u.WriteStream(fileRef, pdfdoc.Dict{"Length1": int64(len(data))}, data, true); err != nil {
		return pdfdoc.Ref{}, err
	}
	u.WriteObject(descRef, pdfdoc.Dict{
		"Type": pdfdoc.Name("FontDescriptor"), "FontName": name, "Flags": int64(4),
		"FontBBox":    pdfdoc.Array{fu(i16(t.head, 36)), fu(i16(t.head, 38)), fu(i16(t.head, 40)), fu(i16(t.head, 42))},
		"ItalicAngle": int64(0), "Ascent": fu(ascent), "Descent": fu(descent), "CapHeight": fu(capHeight),
		"StemV": int64(80), "FontFile2": fileRef,
	})
	widths := make(pdfdoc.Array, len(used.gids))
	for i, g := range used.gids {
		adv, _ := t.metrics(int(g))
		widths[i] = int64(math.Round(float64(adv) * scale))
	}
	u.WriteObject(cidRef, pdfdoc.Dict{
		"Type": pdfdoc.Name("Font"), "Subtype": pdfdoc.Name("CIDFontType2"), "BaseFont": name,
		"CIDSystemInfo":  pdfdoc.Dict{"Registry": pdfdoc.String("Adobe"), "Ordering": pdfdoc.String("Identity"), "Supplement": int64(0)},
		"FontDescriptor": descRef, "CIDToGIDMap": pdfdoc.Name("Identity"),
		"W": pdfdoc.Array{int64(0), widths},
	})
	if err := u.WriteStream(cmapRef, pdfdoc.Dict{}, toUnicode(used.text), true); err != nil {
		return pdfdoc.Ref{}, err
	}
	u.WriteObject(fontRef, pdfdoc.Dict{
		"Type": pdfdoc.Name("Font"), "Subtype": pdfdoc.Name("Type0"), "BaseFont": name,
		"Encoding": pdfdoc.Name("Identity-H"), "DescendantFonts": pdfdoc.Array{cidRef}, "ToUnicode": cmapRef,
	})
	return fontRef, nil
}

// toUnicode builds the ToUnicode CMap: CID i stands for text[i].
func toUnicode(text []string) []byte {
	b := []byte("/CIDInit /ProcSet findresource begin\n12 dict begin\nbegincmap\n" +
		"/CIDSystemInfo << /Registry (Adobe) /Ordering (UCS) /Supplement 0 >> def\n" +
		"/CMapName /Adobe-Identity-UCS def\n/CMapType 2 def\n" +
		"1 begincodespacerange\n<0000> <FFFF>\nendcodespacerange\n")
	var entries [][2]string
	for cid, s := range text {
		if s == "" {
			continue
		}
		var h []byte
		for _, u := range utf16.Encode([]rune(s)) {
			h = fmt.Appendf(h, "%04X", u)
		}
		entries = append(entries, [2]string{fmt.Sprintf("%04X", cid), string(h)})
	}
	for len(entries) > 0 {
		n := min(len(entries), 100)
		b = fmt.Appendf(b, "%d beginbfchar\n", n)
		for _, e := range entries[:n] {
			b = fmt.Appendf(b, "<%s> <%s>\n", e[0], e[1])
		}
		b = append(b, "endbfchar\n"...)
		entries = entries[n:]
	}
	return append(b, "endcmap\nCMapName currentdict /CMapResource defineresource pop\nend\nend\n"...)
}
