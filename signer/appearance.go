package signer

import (
	"bytes"
	"fmt"
	"image/color"
	"image/jpeg"
	"strings"

	"github.com/thiqa/thiqa/signer/pdfdoc"
)

// Appearance makes an approval signature visible: a rectangle on the
// signature's page showing the signer's name, the signing time and the
// reason in Helvetica.
type Appearance struct {
	// Rect is [llx lly urx ury] in default user space units (points).
	Rect [4]float64
	// FontSize is the text size (default 9).
	FontSize float64
	// Lines replace the default text (name, time, reason) when set.
	Lines []string
	// JPEG, when set, is an image (baseline JPEG, grey, RGB or CMYK) drawn
	// in the left part of the box, its aspect ratio kept; the text moves
	// to the right of it.
	JPEG []byte
}

// writeAppearance writes the form XObject of the visible signature and
// returns its reference and the widget rectangle.
func writeAppearance(u *pdfdoc.Update, opts *Options) (pdfdoc.Object, pdfdoc.Array, error) {
	a := opts.Appearance
	w, h := a.Rect[2]-a.Rect[0], a.Rect[3]-a.Rect[1]
	if w <= 0 || h <= 0 {
		return nil, nil, fmt.Errorf("%w: appearance rectangle %v is empty", ErrOptions, a.Rect)
	}
	size := a.FontSize
	if size <= 0 {
		size = 9
	}
	lines := a.Lines
	if lines == nil {
		name := opts.Name
		if name == "" {
			name = opts.Chain[0].Subject.CommonName
		}
		lines = []string{"Digitally signed by " + name, "Date: " + opts.Time.UTC().Format("2006-01-02 15:04:05 MST")}
		if opts.Reason != "" {
			lines = append(lines, "Reason: "+opts.Reason)
		}
		if opts.Location != "" {
			lines = append(lines, "Location: "+opts.Location)
		}
	}
	resources := pdfdoc.Dict{"Font": pdfdoc.Dict{"Helv": pdfdoc.Dict{
		"Type": pdfdoc.Name("Font"), "Subtype": pdfdoc.Name("Type1"),
		"BaseFont": pdfdoc.Name("Helvetica"), "Encoding": pdfdoc.Name("WinAnsiEncoding"),
	}}}
	var c bytes.Buffer
	fmt.Fprintf(&c, "q 0.95 0.95 0.95 rg 0 0 %s %s re f 0.3 0.3 0.3 RG 0.5 w 0.25 0.25 %s %s re S Q\n",
		num(w), num(h), num(w-0.5), num(h-0.5))
	textX := 3.0
	if len(a.JPEG) > 0 {
		imgRef, iw, ih, err := writeJPEG(u, a.JPEG)
		if err != nil {
			return nil, nil, err
		}
		dh := h - 4
		dw := dh * float64(iw) / float64(ih)
		if dw > w/2 {
			dw = w / 2
			dh = dw * float64(ih) / float64(iw)
		}
		fmt.Fprintf(&c, "q %s 0 0 %s 2 %s cm /Img Do Q\n", num(dw), num(dh), num((h-dh)/2))
		resources["XObject"] = pdfdoc.Dict{"Img": imgRef}
		textX = dw + 6
	}
	fmt.Fprintf(&c, "BT 0 g /Helv %s Tf %s TL %s %s Td\n", num(size), num(size*1.2), num(textX), num(h-size-2))
	for i, l := range lines {
		if i > 0 {
			c.WriteString("T* ")
		}
		c.Write(pdfdoc.AppendObject(nil, pdfdoc.String(winAnsi(l))))
		c.WriteString(" Tj\n")
	}
	c.WriteString("ET\n")
	ref := u.Alloc()
	d := pdfdoc.Dict{
		"Type": pdfdoc.Name("XObject"), "Subtype": pdfdoc.Name("Form"),
		"BBox":      pdfdoc.Array{int64(0), int64(0), w, h},
		"Resources": resources,
	}
	if err := u.WriteStream(ref, d, c.Bytes(), true); err != nil {
		return nil, nil, err
	}
	return ref, pdfdoc.Array{a.Rect[0], a.Rect[1], a.Rect[2], a.Rect[3]}, nil
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

// writeJPEG writes a JPEG as an image XObject (DCTDecode, the bytes as they
// are) and returns its reference and pixel size.
func writeJPEG(u *pdfdoc.Update, b []byte) (pdfdoc.Ref, int, int, error) {
	cfg, err := jpeg.DecodeConfig(bytes.NewReader(b))
	if err != nil || cfg.Width <= 0 || cfg.Height <= 0 {
		return pdfdoc.Ref{}, 0, 0, fmt.Errorf("%w: appearance image: %v", ErrOptions, err)
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
	ref := u.Alloc()
	d["Type"], d["Subtype"] = pdfdoc.Name("XObject"), pdfdoc.Name("Image")
	d["Width"], d["Height"] = int64(cfg.Width), int64(cfg.Height)
	d["ColorSpace"], d["BitsPerComponent"] = cs, int64(8)
	d["Filter"] = pdfdoc.Name("DCTDecode")
	if err := u.WriteStream(ref, d, b, false); err != nil {
		return pdfdoc.Ref{}, 0, 0, err
	}
	return ref, cfg.Width, cfg.Height, nil
}
