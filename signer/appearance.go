package signer

import (
	"bytes"
	"fmt"
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
	var c bytes.Buffer
	fmt.Fprintf(&c, "q 0.95 0.95 0.95 rg 0 0 %s %s re f 0.3 0.3 0.3 RG 0.5 w 0.25 0.25 %s %s re S Q\n",
		num(w), num(h), num(w-0.5), num(h-0.5))
	fmt.Fprintf(&c, "BT 0 g /Helv %s Tf %s TL 3 %s Td\n", num(size), num(size*1.2), num(h-size-2))
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
		"BBox": pdfdoc.Array{int64(0), int64(0), w, h},
		"Resources": pdfdoc.Dict{"Font": pdfdoc.Dict{"Helv": pdfdoc.Dict{
			"Type": pdfdoc.Name("Font"), "Subtype": pdfdoc.Name("Type1"),
			"BaseFont": pdfdoc.Name("Helvetica"), "Encoding": pdfdoc.Name("WinAnsiEncoding"),
		}}},
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
