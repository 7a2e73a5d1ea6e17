package pdftext

import (
	"bytes"
	"fmt"
	"strings"
	"testing"

	"github.com/go-text/typesetting/font"

	"github.com/thiqa/thiqa/signer/pdfdoc"
)

const dejaVuSans = "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf"

// TestSubsetIsAFont: the subset of what a layout drew parses as a TrueType
// font again, holds exactly the drawn glyphs (plus composite components),
// keeps their advance widths, and is a small part of the original.
func TestSubsetIsAFont(t *testing.T) {
	f, err := LoadFont(dejaVuSans)
	if err != nil {
		t.Fatalf("%v (install fonts-dejavu-core)", err)
	}
	l, err := NewLayout(Fonts{f})
	if err != nil {
		t.Fatal(err)
	}
	p := l.Set("وقّعه رقمياً: عائشة — Aisha Ünal", 10, 500)
	if len(p.Lines) != 1 || !p.RTL || p.Lines[0].Width <= 0 {
		t.Fatalf("paragraph: %d lines, RTL %v, width %v", len(p.Lines), p.RTL, p.Lines[0].Width)
	}
	used := l.used[0]
	sub, err := f.subset(used.gids)
	if err != nil {
		t.Fatal(err)
	}
	if len(sub) > len(f.data)/10 {
		t.Fatalf("subset of %d glyphs is %d bytes of %d", len(used.gids), len(sub), len(f.data))
	}
	face, err := font.ParseTTF(bytes.NewReader(sub))
	if err != nil {
		t.Fatalf("the subset does not parse: %v", err)
	}
	orig := font.NewFace(f.ft)
	sf, err := ParseFont("subset", sub)
	if err != nil {
		t.Fatal(err)
	}
	st, err := sf.readTables()
	if err != nil || len(st.loca)-1 < len(used.gids) {
		t.Fatalf("subset tables: %v, %d glyphs for %d drawn", err, len(st.loca)-1, len(used.gids))
	}
	outlined := 0
	for cid, g := range used.gids {
		if a, b := face.HorizontalAdvance(font.GID(cid)), orig.HorizontalAdvance(g); a != b {
			t.Fatalf("CID %d (glyph %d): advance %v, was %v", cid, g, a, b)
		}
		if o, ok := face.GlyphDataOutline(font.GID(cid)); ok && len(o.Segments) > 0 {
			outlined++
		}
	}
	if outlined < len(used.gids)-3 { // the space and notdef have no outline
		t.Fatalf("%d of %d glyphs have outlines in the subset", outlined, len(used.gids))
	}
	// The fonts and their ToUnicode map land in a PDF update.
	rd, err := pdfdoc.Open(bytes.NewReader(minimalPDF), int64(len(minimalPDF)))
	if err != nil {
		t.Fatal(err)
	}
	u := pdfdoc.NewUpdate(rd)
	res, err := l.WriteFonts(u)
	if err != nil || len(res) != 1 {
		t.Fatalf("fonts %v: %v", res, err)
	}
	data, _ := u.Finish()
	if !bytes.Contains(data, []byte("/Identity-H")) || !bytes.Contains(data, []byte("+DejaVuSans")) {
		t.Fatalf("font objects: %.400s", data)
	}
	if cmap := string(toUnicode(used.text)); !strings.Contains(cmap, "<0639>") || !strings.Contains(cmap, "beginbfchar") {
		t.Fatalf("ToUnicode lacks ع (U+0639): %s", cmap)
	}
}

// minimalPDF is a PDF of one catalog and an empty page tree.
var minimalPDF = func() []byte {
	var b bytes.Buffer
	b.WriteString("%PDF-1.7\n")
	o1 := b.Len()
	b.WriteString("1 0 obj\n<< /Type /Catalog /Pages 2 0 R >>\nendobj\n")
	o2 := b.Len()
	b.WriteString("2 0 obj\n<< /Type /Pages /Kids [] /Count 0 >>\nendobj\n")
	x := b.Len()
	fmt.Fprintf(&b, "xref\n0 3\n0000000000 65535 f \n%010d 00000 n \n%010d 00000 n \ntrailer\n<< /Size 3 /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n", o1, o2, x)
	return b.Bytes()
}()
