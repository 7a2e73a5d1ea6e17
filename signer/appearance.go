package signer

import (
	"bytes"
	"errors"
	"fmt"
	"image/color"
	"image/jpeg"
	"image/png"
	"strings"

	qrcode "github.com/skip2/go-qrcode"

	"github.com/thiqa/thiqa/signer/pdfdoc"
	"github.com/thiqa/thiqa/signer/pdftext"
)

// Bounds of an appearance's image.
const (
	// MaxImageBytes bounds the PNG or JPEG file of an appearance.
	MaxImageBytes = 512 << 10
	// maxImagePixels bounds its width times height (decoded in memory).
	maxImagePixels = 2048 * 2048
)

// Appearance makes a signature visible: a rectangle on the signature's
// page showing text lines, optionally an image (left) and a QR code
// (right).
type Appearance struct {
	// Rect is [llx lly urx ury] in default user space units (points); it
	// must lie within the page.
	Rect [4]float64
	// FontSize is the largest text size (default 9); the text is made
	// smaller until it fits.
	FontSize float64
	// Lines replace the default text (name, time, reason, location).
	Lines []string
	// Fonts, when set, set the text with HarfBuzz shaping and bidi
	// (Arabic joined, right to left) in these fonts, embedded as subsets;
	// the later fonts are fallbacks for characters the first lacks. Without
	// Fonts the text is Helvetica, and only WinAnsi characters show.
	Fonts pdftext.Fonts
	// JPEG or PNG, when set, is an image (at most MaxImageBytes) drawn in
	// the left part of the box, its aspect ratio kept.
	JPEG, PNG []byte
	// QR, when set, is encoded as a QR code in the right part of the box
	// (a verification URL).
	QR string
}

// drawing is an appearance laid out once (before the document is
// prepared), then written into the update of each attempt.
type drawing struct {
	w, h     float64
	content  []byte
	layout   *pdftext.Layout
	image    *pdfImage
	warnings []string
}

// pdfImage is an image ready to be written: raw samples or JPEG bytes.
type pdfImage struct {
	dict  pdfdoc.Dict
	data  []byte
	flate bool
	alpha []byte // PNG transparency, a /SMask
	w, h  int
}

// prepareAppearance checks the appearance against the page and lays it out.
func prepareAppearance(rd *pdfdoc.Reader, opts *Options) (*drawing, error) {
	a := opts.Appearance
	w, h := a.Rect[2]-a.Rect[0], a.Rect[3]-a.Rect[1]
	if !(w >= 1 && h >= 1) {
		return nil, fmt.Errorf("%w: appearance rectangle %v is empty", ErrOptions, a.Rect)
	}
	if err := checkOnPage(rd, opts.Page, a.Rect); err != nil {
		return nil, err
	}
	d := &drawing{w: w, h: h}
	var err error
	switch {
	case len(a.JPEG) > 0:
		d.image, err = jpegImage(a.JPEG)
	case len(a.PNG) > 0:
		d.image, err = pngImage(a.PNG)
	}
	if err != nil {
		return nil, err
	}
	var c bytes.Buffer
	fmt.Fprintf(&c, "q 0.96 0.96 0.96 rg 0 0 %s %s re f 0.3 0.3 0.3 RG 0.5 w 0.25 0.25 %s %s re S Q\n",
		num(w), num(h), num(w-0.5), num(h-0.5))
	left, right := 4.0, w-4
	if img := d.image; img != nil {
		dh := h - 4
		dw := dh * float64(img.w) / float64(img.h)
		if dw > w/3 {
			dw = w / 3
			dh = dw * float64(img.h) / float64(img.w)
		}
		fmt.Fprintf(&c, "q %s 0 0 %s 2 %s cm /Img Do Q\n", num(dw), num(dh), num((h-dh)/2))
		left = dw + 6
	}
	if a.QR != "" {
		side := min(h-4, w/3)
		if err := drawQR(&c, a.QR, w-2-side, (h-side)/2, side); err != nil {
			return nil, err
		}
		right = w - side - 6
	}
	if right-left < 10 {
		return nil, fmt.Errorf("%w: the appearance rectangle is too narrow for its text", ErrOptions)
	}
	lines := a.Lines
	if lines == nil {
		lines = defaultLines(opts)
	}
	size := a.FontSize
	if size <= 0 {
		size = 9
	}
	if len(a.Fonts) == 0 {
		writeHelvetica(&c, lines, size, left, h)
	} else if d.layout, err = setText(&c, a.Fonts, lines, size, left, right, h); err != nil {
		return nil, err
	} else {
		d.warnings = d.layout.Warnings()
	}
	d.content = c.Bytes()
	return d, nil
}

// defaultLines are the text of an appearance without Lines.
func defaultLines(opts *Options) []string {
	name := opts.Name
	if name == "" {
		name = opts.Chain[0].Subject.CommonName
	}
	lines := []string{"Digitally signed by " + name, "Date: " + opts.Time.UTC().Format("2006-01-02 15:04:05 MST")}
	if opts.Reason != "" {
		lines = append(lines, "Reason: "+opts.Reason)
	}
	if opts.Location != "" {
		lines = append(lines, "Location: "+opts.Location)
	}
	return lines
}

// setText shapes lines into [left, right] × [2, h-2], shrinking the size
// until they fit (not below 4 points).
func setText(c *bytes.Buffer, fonts pdftext.Fonts, lines []string, size, left, right, h float64) (*pdftext.Layout, error) {
	for ; ; size -= 0.5 {
		l, err := pdftext.NewLayout(fonts)
		if err != nil {
			return nil, err
		}
		paras := make([]pdftext.Paragraph, len(lines))
		total := 0.0
		for i, s := range lines {
			paras[i] = l.Set(s, size, right-left)
			total += paras[i].Height()
		}
		if total > h-4 && size > 4 {
			continue
		}
		b := c.AvailableBuffer()
		top := h - 2 - max(0, (h-4-total)/2)
		for _, p := range paras {
			b, top = l.Draw(b, p, left, top, right-left)
		}
		c.Write(b)
		return l, nil
	}
}

// writeHelvetica writes lines in Helvetica (WinAnsi), from the top left.
func writeHelvetica(c *bytes.Buffer, lines []string, size, x, h float64) {
	fmt.Fprintf(c, "BT 0 g /Helv %s Tf %s TL %s %s Td\n", num(size), num(size*1.2), num(x), num(h-size-2))
	for i, l := range lines {
		if i > 0 {
			c.WriteString("T* ")
		}
		c.Write(pdfdoc.AppendObject(nil, pdfdoc.String(winAnsi(l))))
		c.WriteString(" Tj\n")
	}
	c.WriteString("ET\n")
}

// drawQR draws text as a QR code (medium error correction, black modules
// as filled squares) in the square of the given side at (x, y).
func drawQR(c *bytes.Buffer, text string, x, y, side float64) error {
	q, err := qrcode.New(text, qrcode.Medium)
	if err != nil {
		return fmt.Errorf("%w: QR code: %v", ErrOptions, err)
	}
	bm := q.Bitmap() // with its quiet zone
	n := float64(len(bm))
	m := side / n
	fmt.Fprintf(c, "q 1 g %s %s %s %s re f 0 g\n", num(x), num(y), num(side), num(side))
	for r, row := range bm {
		for col, dark := range row {
			if dark {
				fmt.Fprintf(c, "%s %s %s %s re\n", num(x+float64(col)*m), num(y+side-float64(r+1)*m), num(m+0.01), num(m+0.01))
			}
		}
	}
	c.WriteString("f Q\n")
	return nil
}

// writeAppearance writes the form XObject of a visible signature (its
// fonts and image) into u and returns its reference and the widget
// rectangle.
func writeAppearance(u *pdfdoc.Update, d *drawing, rect [4]float64) (pdfdoc.Object, pdfdoc.Array, error) {
	resources := pdfdoc.Dict{}
	if d.layout != nil {
		fonts, err := d.layout.WriteFonts(u)
		if err != nil {
			return nil, nil, fmt.Errorf("signer: embedding fonts: %w", err)
		}
		resources["Font"] = fonts
	} else {
		resources["Font"] = pdfdoc.Dict{"Helv": pdfdoc.Dict{
			"Type": pdfdoc.Name("Font"), "Subtype": pdfdoc.Name("Type1"),
			"BaseFont": pdfdoc.Name("Helvetica"), "Encoding": pdfdoc.Name("WinAnsiEncoding"),
		}}
	}
	if img := d.image; img != nil {
		ref := u.Alloc()
		dict := img.dict.Clone()
		if img.alpha != nil {
			mask := u.Alloc()
			if err := u.WriteStream(mask, pdfdoc.Dict{"Type": pdfdoc.Name("XObject"), "Subtype": pdfdoc.Name("Image"),
				"Width": int64(img.w), "Height": int64(img.h), "ColorSpace": pdfdoc.Name("DeviceGray"), "BitsPerComponent": int64(8)}, img.alpha, true); err != nil {
				return nil, nil, err
			}
			dict["SMask"] = mask
		}
		if err := u.WriteStream(ref, dict, img.data, img.flate); err != nil {
			return nil, nil, err
		}
		resources["XObject"] = pdfdoc.Dict{"Img": ref}
	}
	ref := u.Alloc()
	xo := pdfdoc.Dict{
		"Type": pdfdoc.Name("XObject"), "Subtype": pdfdoc.Name("Form"),
		"BBox":      pdfdoc.Array{int64(0), int64(0), d.w, d.h},
		"Resources": resources,
	}
	if err := u.WriteStream(ref, xo, d.content, true); err != nil {
		return nil, nil, err
	}
	return ref, pdfdoc.Array{rect[0], rect[1], rect[2], rect[3]}, nil
}

func num(f float64) string {
	return strings.TrimSuffix(strings.TrimRight(fmt.Sprintf("%.2f", f), "0"), ".")
}

// winAnsi maps s to WinAnsiEncoding, replacing what it cannot show by '?'.
func winAnsi(s string) string {
	var b strings.Builder
	for _, r := range s {
		if r < 0x20 || (r >= 0x7f && r < 0xa0) || r > 0xff {
			b.WriteByte('?')
			continue
		}
		b.WriteByte(byte(r))
	}
	return b.String()
}

// jpegImage takes a JPEG as it is (DCTDecode).
func jpegImage(b []byte) (*pdfImage, error) {
	if len(b) > MaxImageBytes {
		return nil, fmt.Errorf("%w: the appearance image is larger than %d bytes", ErrOptions, MaxImageBytes)
	}
	cfg, err := jpeg.DecodeConfig(bytes.NewReader(b))
	if err != nil || cfg.Width <= 0 || cfg.Height <= 0 {
		return nil, fmt.Errorf("%w: appearance image: not a JPEG: %v", ErrOptions, err)
	}
	var cs pdfdoc.Name
	d := pdfdoc.Dict{}
	switch cfg.ColorModel {
	case color.GrayModel:
		cs = "DeviceGray"
	case color.CMYKModel:
		cs = "DeviceCMYK"
		d["Decode"] = pdfdoc.Array{int64(1), int64(0), int64(1), int64(0), int64(1), int64(0), int64(1), int64(0)}
	default:
		cs = "DeviceRGB"
	}
	d["Type"], d["Subtype"] = pdfdoc.Name("XObject"), pdfdoc.Name("Image")
	d["Width"], d["Height"] = int64(cfg.Width), int64(cfg.Height)
	d["ColorSpace"], d["BitsPerComponent"] = cs, int64(8)
	d["Filter"] = pdfdoc.Name("DCTDecode")
	return &pdfImage{dict: d, data: b, w: cfg.Width, h: cfg.Height}, nil
}

// pngImage decodes a PNG (checking its size before decoding) into 8-bit
// RGB samples and, when it has transparency, an alpha mask.
func pngImage(b []byte) (*pdfImage, error) {
	if len(b) > MaxImageBytes {
		return nil, fmt.Errorf("%w: the appearance image is larger than %d bytes", ErrOptions, MaxImageBytes)
	}
	cfg, err := png.DecodeConfig(bytes.NewReader(b))
	if err != nil {
		return nil, fmt.Errorf("%w: appearance image: not a PNG: %v", ErrOptions, err)
	}
	if cfg.Width <= 0 || cfg.Height <= 0 || cfg.Width*cfg.Height > maxImagePixels {
		return nil, fmt.Errorf("%w: appearance image: %dx%d pixels, at most %d", ErrOptions, cfg.Width, cfg.Height, maxImagePixels)
	}
	img, err := png.Decode(bytes.NewReader(b))
	if err != nil {
		return nil, fmt.Errorf("%w: appearance image: %v", ErrOptions, err)
	}
	bounds := img.Bounds()
	w, h := bounds.Dx(), bounds.Dy()
	rgb := make([]byte, 0, 3*w*h)
	alpha := make([]byte, 0, w*h)
	opaque := true
	for y := bounds.Min.Y; y < bounds.Max.Y; y++ {
		for x := bounds.Min.X; x < bounds.Max.X; x++ {
			c := color.NRGBAModel.Convert(img.At(x, y)).(color.NRGBA)
			rgb = append(rgb, c.R, c.G, c.B)
			alpha = append(alpha, c.A)
			opaque = opaque && c.A == 0xff
		}
	}
	pi := &pdfImage{data: rgb, flate: true, w: w, h: h, dict: pdfdoc.Dict{
		"Type": pdfdoc.Name("XObject"), "Subtype": pdfdoc.Name("Image"), "Width": int64(w), "Height": int64(h),
		"ColorSpace": pdfdoc.Name("DeviceRGB"), "BitsPerComponent": int64(8),
	}}
	if !opaque {
		pi.alpha = alpha
	}
	return pi, nil
}

// checkOnPage refuses an appearance rectangle that is not within page's
// crop box (or media box), inherited through the page tree.
func checkOnPage(rd *pdfdoc.Reader, page int, r [4]float64) error {
	_, pd, err := rd.Page(page)
	if err != nil {
		if errors.Is(err, pdfdoc.ErrNoPage) {
			return fmt.Errorf("%w: the document has no page %d", ErrOptions, page+1)
		}
		return mapErr("finding the page", err)
	}
	box := pageBox(rd, pd)
	if box == nil {
		return nil // no box to check against: viewers default to letter size
	}
	if r[0] < box[0]-0.5 || r[1] < box[1]-0.5 || r[2] > box[2]+0.5 || r[3] > box[3]+0.5 {
		return fmt.Errorf("%w: the rectangle [%s %s %s %s] is outside page %d ([%s %s %s %s])", ErrOptions,
			num(r[0]), num(r[1]), num(r[2]), num(r[3]), page+1, num(box[0]), num(box[1]), num(box[2]), num(box[3]))
	}
	return nil
}

// pageBox returns the page's /CropBox or /MediaBox, looking up the /Parent
// chain for an inherited one; nil when none is readable.
func pageBox(rd *pdfdoc.Reader, pd pdfdoc.Dict) []float64 {
	for depth := 0; pd != nil && depth < 32; depth++ {
		for _, key := range []pdfdoc.Name{"CropBox", "MediaBox"} {
			o, err := rd.Resolve(pd[key])
			arr, ok := o.(pdfdoc.Array)
			if err != nil || !ok || len(arr) != 4 {
				continue
			}
			box := make([]float64, 4)
			for i, v := range arr {
				switch n := v.(type) {
				case int64:
					box[i] = float64(n)
				case float64:
					box[i] = n
				default:
					return nil
				}
			}
			box[0], box[2] = min(box[0], box[2]), max(box[0], box[2])
			box[1], box[3] = min(box[1], box[3]), max(box[1], box[3])
			return box
		}
		parent, err := rd.ResolveDict(pd["Parent"])
		if err != nil {
			return nil
		}
		pd = parent
	}
	return nil
}
