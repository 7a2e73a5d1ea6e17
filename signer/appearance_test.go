package signer

import (
	"bytes"
	"context"
	"image"
	"image/color"
	"image/png"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/thiqa/thiqa/internal/testenv"
	"github.com/thiqa/thiqa/signer/pdftext"
)

// dejaVu loads a DejaVu font from Debian's fonts-dejavu-core.
func dejaVu(t testing.TB, name string) *pdftext.Font {
	t.Helper()
	f, err := pdftext.LoadFont(filepath.Join("/usr/share/fonts/truetype/dejavu", name+".ttf"))
	if err != nil {
		t.Fatalf("%v (install fonts-dejavu-core: scripts/install-deps.sh)", err)
	}
	return f
}

// keepRender copies a rendered page to $THIQA_APPEARANCE_PNG/name when set,
// for a person to look at.
func keepRender(t *testing.T, name string, pdf []byte) {
	dir := os.Getenv("THIQA_APPEARANCE_PNG")
	if dir == "" {
		return
	}
	f := filepath.Join(t.TempDir(), "a.pdf")
	_ = os.WriteFile(f, pdf, 0o600)
	run(t, testenv.Tool(t, "pdftoppm"), "-r", "200", "-png", "-singlefile", "-x", "240", "-y", "1820", "-W", "1020", "-H", "320", f, filepath.Join(dir, name))
}

// TestArabicAppearance: a visible signature whose text mixes Arabic (shaped,
// right to left) and Latin, in DejaVu Sans embedded as a subset, with a QR
// code and a PNG: pdfsig and qpdf accept it, pdftotext gives the names back
// in logical order, the box is drawn, and nothing falls back.
func TestArabicAppearance(t *testing.T) {
	p := getPKI(t)
	var logo bytes.Buffer
	img := image.NewNRGBA(image.Rect(0, 0, 60, 60))
	for y := 0; y < 60; y++ {
		for x := 0; x < 60; x++ {
			img.SetNRGBA(x, y, color.NRGBA{R: 0, G: 90, B: 60, A: uint8(255 * (x + y) / 118)})
		}
	}
	_ = png.Encode(&logo, img)
	o := signOpts(p, false, LevelBB)
	o.Appearance = &Appearance{Rect: [4]float64{90, 80, 450, 180}, FontSize: 10, Fonts: pdftext.Fonts{dejaVu(t, "DejaVuSans")},
		PNG: logo.Bytes(), QR: "https://thiqa.example.om/verify",
		Lines: []string{"وقّعه رقمياً: عائشة البلوشي", "Aisha Al Balushi", "وزارة الصحة", "التاريخ: ١٤ مايو ٢٠٢٦، ١٠:٣٠ (+04:00)", "السبب: موافقة"}}
	res := signAndKeep(t, o, "arabic")
	if len(res.warnings) != 0 {
		t.Fatalf("warnings: %v", res.warnings)
	}
	text := pdftotext(t, res.pdf)
	for _, want := range []string{"عائشة البلوشي", "Aisha Al Balushi", "وزارة الصحة", "موافقة"} {
		if !strings.Contains(text, want) {
			t.Errorf("pdftotext lacks %q in logical order:\n%s", want, text)
		}
	}
	if !bytes.Contains(res.pdf, []byte("+DejaVuSans")) || !bytes.Contains(res.pdf, []byte("/FontFile2")) {
		t.Fatal("the font is not embedded as a subset")
	}
	if len(res.pdf) > 120<<10 {
		t.Fatalf("the signed PDF is %d bytes: the font is not subset", len(res.pdf))
	}
	_, h, px := renderPage(t, res.pdf)
	dark, qr := 0, 0
	for y := h - 178; y < h-82; y++ {
		for x := 92; x < 448; x++ {
			if px(x, y) < 100 {
				dark++
				if x > 360 {
					qr++
				}
			}
		}
	}
	if dark < 2000 || qr < 1500 {
		t.Fatalf("box not drawn as expected: %d dark pixels, %d in the QR code", dark, qr)
	}
}

// TestAppearanceFallbackFont: a first font without Arabic draws the Latin
// text; the Arabic falls back to the next font, and a character no font has
// is reported, never drawn silently as a box.
func TestAppearanceFallbackFont(t *testing.T) {
	p := getPKI(t)
	o := signOpts(p, false, LevelBB)
	o.Appearance = &Appearance{Rect: [4]float64{90, 80, 450, 150}, Fonts: pdftext.Fonts{dejaVu(t, "DejaVuSerif"), dejaVu(t, "DejaVuSans")},
		Lines: []string{"Signed by Aisha — عائشة", "漢"}}
	res := signAndKeep(t, o, "fallback")
	all := strings.Join(res.warnings, "\n")
	if !strings.Contains(all, "drawn with the fallback font DejaVuSans") || !strings.Contains(all, "U+0639") ||
		!strings.Contains(all, "no configured font has a glyph for '漢' (U+6F22)") {
		t.Fatalf("warnings: %v", res.warnings)
	}
	if !bytes.Contains(res.pdf, []byte("+DejaVuSerif")) || !bytes.Contains(res.pdf, []byte("+DejaVuSans")) {
		t.Fatal("both fonts should be embedded")
	}
	if text := pdftotext(t, res.pdf); !strings.Contains(text, "عائشة") || !strings.Contains(text, "Signed by Aisha") {
		t.Fatalf("pdftotext: %s", text)
	}
}

// TestAppearanceRefusals: what cannot be drawn is refused before anything
// is signed.
func TestAppearanceRefusals(t *testing.T) {
	p := getPKI(t)
	big := bytes.Repeat([]byte{1}, MaxImageBytes+1)
	for name, mut := range map[string]func(*Options){
		"outside the page": func(o *Options) { o.Appearance.Rect = [4]float64{500, 700, 700, 900} },
		"no such page":     func(o *Options) { o.Page = 3 },
		"not a PNG":        func(o *Options) { o.Appearance.PNG = []byte("GIF89a, not a PNG") },
		"image too large":  func(o *Options) { o.Appearance.PNG = big },
		"empty rectangle":  func(o *Options) { o.Appearance.Rect = [4]float64{100, 100, 100, 200} },
	} {
		o := signOpts(p, false, LevelBB)
		o.Appearance = &Appearance{Rect: [4]float64{100, 100, 300, 160}, Fonts: pdftext.Fonts{dejaVu(t, "DejaVuSans")}}
		mut(&o)
		var out bytes.Buffer
		if _, err := Sign(context.Background(), Bytes(testPDF(1, 0)), int64(len(testPDF(1, 0))), &out, o); err == nil || out.Len() != 0 {
			t.Errorf("%s: err %v, %d bytes written", name, err, out.Len())
		}
	}
}

type signed struct {
	pdf      []byte
	warnings []string
}

// signAndKeep signs a one-page PDF with o and checks it with pdfsig and
// qpdf.
func signAndKeep(t *testing.T, o Options, name string) signed {
	t.Helper()
	in := testPDF(1, 0)
	var out bytes.Buffer
	res, err := Sign(context.Background(), Bytes(in), int64(len(in)), &out, o)
	if err != nil {
		t.Fatal(err)
	}
	assertPdfsig(t, getPKI(t), out.Bytes(), 1)
	qpdfCheck(t, out.Bytes())
	keepRender(t, name, out.Bytes())
	return signed{pdf: out.Bytes(), warnings: res.Warnings}
}

// pdftotext extracts the text of page 1 with poppler.
func pdftotext(t *testing.T, pdf []byte) string {
	t.Helper()
	f := filepath.Join(t.TempDir(), "t.pdf")
	if err := os.WriteFile(f, pdf, 0o600); err != nil {
		t.Fatal(err)
	}
	return run(t, testenv.Tool(t, "pdftotext"), "-f", "1", "-l", "1", f, "-")
}
