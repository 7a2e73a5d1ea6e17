// Package pdftext sets text for the appearances of visible signatures: it
// shapes lines with github.com/go-text/typesetting (HarfBuzz shaping, the
// Unicode bidirectional algorithm, line breaking), so Arabic is joined and
// laid out right to left, falls back to the next font for characters the
// first one lacks (and says so), and embeds each font used as a TrueType
// subset (Type0 / CIDFontType2, Identity-H) with a ToUnicode map, so that
// text extraction gives the characters back in logical order.
//
// Fonts come from files (Debian's fonts-dejavu, fonts-noto) and are parsed
// once; a Font is safe for concurrent use, a Layout belongs to one
// appearance.
package pdftext

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/go-text/typesetting/font"
	ot "github.com/go-text/typesetting/font/opentype"
)

// ErrFont reports a font file that cannot be used.
var ErrFont = errors.New("pdftext: unusable font")

// maxFontFile bounds a font file.
const maxFontFile = 64 << 20

// Font is a parsed TrueType font, safe for concurrent use.
type Font struct {
	// Name is the PostScript-like name used in the PDF (no spaces).
	Name string
	data []byte
	ft   *font.Font
	ld   *ot.Loader
}

// LoadFont reads and parses a TrueType (glyf) font file.
func LoadFont(path string) (*Font, error) {
	st, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrFont, err)
	}
	if st.Size() > maxFontFile {
		return nil, fmt.Errorf("%w: %s is larger than %d bytes", ErrFont, path, maxFontFile)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrFont, err)
	}
	name := strings.TrimSuffix(filepath.Base(path), filepath.Ext(path))
	return ParseFont(name, data)
}

// ParseFont parses a TrueType (glyf) font; name is what the PDF calls it.
func ParseFont(name string, data []byte) (*Font, error) {
	ld, err := ot.NewLoader(bytes.NewReader(data))
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %v", ErrFont, name, err)
	}
	for _, t := range []string{"glyf", "loca", "head", "hhea", "hmtx", "maxp"} {
		if !ld.HasTable(ot.MustNewTag(t)) {
			return nil, fmt.Errorf("%w: %s has no %s table (only TrueType outlines can be embedded)", ErrFont, name, t)
		}
	}
	ft, err := font.NewFont(ld)
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %v", ErrFont, name, err)
	}
	clean := strings.Map(func(r rune) rune {
		if r <= ' ' || r > '~' || strings.ContainsRune("()<>[]{}/%#", r) {
			return -1
		}
		return r
	}, name)
	if clean == "" {
		clean = "Font"
	}
	return &Font{Name: clean, data: data, ft: ft, ld: ld}, nil
}

// Has reports whether the font maps r to a glyph.
func (f *Font) Has(r rune) bool {
	_, ok := f.ft.NominalGlyph(r)
	return ok
}

// upem is the font's units per em.
func (f *Font) upem() float64 { return float64(f.ft.Upem()) }

// Fonts are the fonts text is set in: the first for everything it covers,
// the others, in order, for the characters it lacks.
type Fonts []*Font

// faceMap resolves each rune to the first face that has a glyph for it
// (the first face when none has), for shaping.Segmenter.
type faceMap struct {
	faces []*font.Face
}

// ResolveFace implements shaping.Fontmap.
func (m faceMap) ResolveFace(r rune) *font.Face {
	for _, f := range m.faces {
		if _, ok := f.NominalGlyph(r); ok {
			return f
		}
	}
	return m.faces[0]
}
