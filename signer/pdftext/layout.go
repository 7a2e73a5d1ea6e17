package pdftext

import (
	"fmt"
	"sort"
	"strconv"
	"strings"
	"unicode"

	"github.com/go-text/typesetting/di"
	"github.com/go-text/typesetting/font"
	"github.com/go-text/typesetting/language"
	"github.com/go-text/typesetting/shaping"
	"golang.org/x/image/math/fixed"
)

// shapeSize is the size text is shaped at (HarfBuzz scales by whole
// units): positions are then scaled to the size drawn.
const shapeSize = 1000

// Layout sets paragraphs of text for one appearance and remembers the
// glyphs drawn, so that WriteFonts embeds exactly those.
type Layout struct {
	fonts  Fonts
	faces  []*font.Face
	used   []*usedFont
	shaper shaping.HarfbuzzShaper
	seg    shaping.Segmenter
	wrap   shaping.LineWrapper
	// fellBack counts, per fallback font, the characters drawn with it;
	// missing lists the characters no font has.
	fellBack map[int][]rune
	missing  []rune
}

// usedFont is what one font draws: CID i (from 1) is glyph gids[i].
type usedFont struct {
	cids map[font.GID]uint16
	gids []font.GID
	text []string // ToUnicode of each CID
}

// NewLayout prepares a layout in fonts (at least one).
func NewLayout(fonts Fonts) (*Layout, error) {
	if len(fonts) == 0 {
		return nil, fmt.Errorf("%w: no font configured", ErrFont)
	}
	l := &Layout{fonts: fonts, fellBack: map[int][]rune{}}
	for _, f := range fonts {
		l.faces = append(l.faces, font.NewFace(f.ft))
		l.used = append(l.used, &usedFont{cids: map[font.GID]uint16{0: 0}, gids: []font.GID{0}, text: []string{""}})
	}
	return l, nil
}

// Paragraph is one text set in lines no wider than the width it was set
// for, at one size.
type Paragraph struct {
	// Lines are the wrapped lines, first to last.
	Lines []Line
	// RTL is the paragraph's direction (from its first strong character).
	RTL bool
	// Size is the font size in points.
	Size float64
}

// Line is one line of a paragraph: glyphs with their positions from the
// line's left end, in points.
type Line struct {
	// Width is the line's advance.
	Width  float64
	glyphs []placed
}

type placed struct {
	font int
	cid  uint16
	x, y float64
}

// Height is the paragraph's height: its lines at 1.25 times the size.
func (p Paragraph) Height() float64 { return float64(len(p.Lines)) * p.Size * 1.25 }

// rtl reports whether text's first strong character is right to left.
func rtl(text []rune) bool {
	for _, r := range text {
		switch {
		case unicode.In(r, unicode.Arabic, unicode.Hebrew, unicode.Syriac, unicode.Thaana, unicode.Nko):
			return true
		case unicode.IsLetter(r):
			return false
		}
	}
	return false
}

// Set shapes text at size (points) and wraps it to width (points).
func (l *Layout) Set(text string, size, width float64) Paragraph {
	runes := []rune(text)
	p := Paragraph{RTL: rtl(runes), Size: size}
	if len(runes) == 0 {
		return p
	}
	dir := di.DirectionLTR
	if p.RTL {
		dir = di.DirectionRTL
	}
	in := shaping.Input{Text: runes, RunStart: 0, RunEnd: len(runes), Direction: dir, Size: fixed.I(shapeSize), Language: language.NewLanguage("ar")}
	if !p.RTL {
		in.Language = language.NewLanguage("en")
	}
	var runs []shaping.Output
	for _, part := range l.seg.Split(in, faceMap{faces: l.faces}) {
		runs = append(runs, l.shaper.Shape(part))
	}
	scale := size / shapeSize
	maxW := int(width / scale)
	lines, _ := l.wrap.WrapParagraph(shaping.WrapConfig{Direction: dir, BreakPolicy: shaping.WhenNecessary}, max(maxW, 1), runes, shaping.NewSliceIterator(runs))
	for _, ln := range lines {
		visual := append([]shaping.Output(nil), ln...)
		sort.SliceStable(visual, func(i, j int) bool { return visual[i].VisualIndex < visual[j].VisualIndex })
		var out Line
		x := 0.0
		for _, run := range visual {
			fi := l.faceIndex(run.Face)
			seen := map[int]bool{}
			for _, g := range run.Glyphs {
				cluster := ""
				if !seen[g.ClusterIndex] {
					seen[g.ClusterIndex] = true
					end := min(g.ClusterIndex+g.RuneCount, len(runes))
					cluster = string(runes[g.ClusterIndex:end])
				}
				l.noteFont(fi, g, runes)
				out.glyphs = append(out.glyphs, placed{font: fi, cid: l.cid(fi, g.GlyphID, cluster),
					x: x + float64(g.XOffset)/64*scale, y: float64(g.YOffset) / 64 * scale})
				x += float64(g.Advance) / 64 * scale
			}
		}
		out.Width = x
		p.Lines = append(p.Lines, out)
	}
	return p
}

// faceIndex returns the index of face among the layout's fonts.
func (l *Layout) faceIndex(f *font.Face) int {
	for i, x := range l.faces {
		if x == f {
			return i
		}
	}
	return 0
}

// noteFont records a glyph that no font has, or that a fallback draws.
func (l *Layout) noteFont(fi int, g shaping.Glyph, runes []rune) {
	if g.ClusterIndex < 0 || g.ClusterIndex >= len(runes) {
		return
	}
	r := runes[g.ClusterIndex]
	if unicode.IsSpace(r) || unicode.IsControl(r) || unicode.Is(unicode.Cf, r) {
		return
	}
	switch {
	case g.GlyphID == 0:
		l.missing = appendRune(l.missing, r)
	case fi > 0:
		l.fellBack[fi] = appendRune(l.fellBack[fi], r)
	}
}

func appendRune(rs []rune, r rune) []rune {
	for _, x := range rs {
		if x == r {
			return rs
		}
	}
	return append(rs, r)
}

// cid returns the CID of glyph gid of font fi, assigning the next one on
// first use; text is what the glyph stands for ("" for the second and
// later glyphs of a cluster).
func (l *Layout) cid(fi int, gid font.GID, text string) uint16 {
	u := l.used[fi]
	if c, ok := u.cids[gid]; ok {
		if u.text[c] == "" {
			u.text[c] = text
		}
		return c
	}
	c := uint16(len(u.gids))
	u.cids[gid] = c
	u.gids = append(u.gids, gid)
	u.text = append(u.text, text)
	return c
}

// Warnings says which characters were drawn with a fallback font and
// which no font has (drawn as the font's missing-glyph box).
func (l *Layout) Warnings() []string {
	var out []string
	for fi := 1; fi < len(l.fonts); fi++ {
		if rs := l.fellBack[fi]; len(rs) > 0 {
			out = append(out, fmt.Sprintf("font %s has no glyph for %s: drawn with the fallback font %s", l.fonts[0].Name, describe(rs), l.fonts[fi].Name))
		}
	}
	if len(l.missing) > 0 {
		out = append(out, fmt.Sprintf("no configured font has a glyph for %s: shown as empty boxes", describe(l.missing)))
	}
	return out
}

// describe names up to five characters with their code points.
func describe(rs []rune) string {
	var parts []string
	for i, r := range rs {
		if i == 5 {
			parts = append(parts, fmt.Sprintf("and %d more", len(rs)-5))
			break
		}
		parts = append(parts, fmt.Sprintf("%q (U+%04X)", r, r))
	}
	return strings.Join(parts, ", ")
}

// Draw appends to b the operators that draw p: its first line's baseline
// a size below top, each line aligned to the left of [x0, x0+width], or to
// its right when the paragraph is right to left. It returns the y below
// the paragraph.
func (l *Layout) Draw(b []byte, p Paragraph, x0, top, width float64) ([]byte, float64) {
	y := top
	for _, ln := range p.Lines {
		y -= p.Size * 1.25
		base := y + p.Size*0.3
		start := x0
		if p.RTL {
			start = x0 + width - ln.Width
		}
		b = append(b, "BT\n"...)
		cur := -1
		for _, g := range ln.glyphs {
			if g.font != cur {
				cur = g.font
				b = append(b, "/T"...)
				b = strconv.AppendInt(b, int64(cur), 10)
				b = append(b, ' ')
				b = appendNum(b, p.Size)
				b = append(b, " Tf\n"...)
			}
			b = append(b, "1 0 0 1 "...)
			b = appendNum(b, start+g.x)
			b = append(b, ' ')
			b = appendNum(b, base+g.y)
			b = append(b, " Tm <"...)
			b = append(b, hexDigits[g.cid>>12], hexDigits[g.cid>>8&15], hexDigits[g.cid>>4&15], hexDigits[g.cid&15])
			b = append(b, "> Tj\n"...)
		}
		b = append(b, "ET\n"...)
	}
	return b, y
}

const hexDigits = "0123456789ABCDEF"

// appendNum appends f with at most three decimals.
func appendNum(b []byte, f float64) []byte {
	s := strconv.FormatFloat(f, 'f', 3, 64)
	s = strings.TrimRight(strings.TrimRight(s, "0"), ".")
	if s == "-0" || s == "" {
		s = "0"
	}
	return append(b, s...)
}
