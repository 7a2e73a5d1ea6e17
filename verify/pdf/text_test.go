package pdf

import (
	"strings"
	"testing"
	"unicode/utf8"
)

// TestTextStringPrefixCutsBetweenCharacters: field names are cut at 1 KB;
// the cut went through the raw bytes and then through the UTF-8 name, so
// a name could end in half a character, U+FFFD in the report. Now the
// cut falls between characters in every encoding, and UTF-16 surrogate
// pairs decode to their character (they were two U+FFFD).
func TestTextStringPrefixCutsBetweenCharacters(t *testing.T) {
	utf16be := func(s string) []byte {
		b := []byte{0xfe, 0xff}
		for _, r := range s {
			if r > 0xffff {
				r -= 0x10000
				hi, lo := 0xd800+(r>>10), 0xdc00+(r&0x3ff)
				b = append(b, byte(hi>>8), byte(hi), byte(lo>>8), byte(lo))
				continue
			}
			b = append(b, byte(r>>8), byte(r))
		}
		return b
	}
	latin := append([]byte("a"), []byte(strings.Repeat("\xe9", 700))...) // "a" then é in PDFDocEncoding
	for name, c := range map[string]struct {
		raw  []byte
		full string
	}{
		"PDFDocEncoding":          {latin, "a" + strings.Repeat("é", 700)},
		"UTF-16BE":                {utf16be("a" + strings.Repeat("ع", 700)), "a" + strings.Repeat("ع", 700)},
		"UTF-16BE surrogates":     {utf16be("ab" + strings.Repeat("😀", 300)), "ab" + strings.Repeat("😀", 300)},
		"UTF-8 with BOM":          {append([]byte{0xef, 0xbb, 0xbf}, "a"+strings.Repeat("ع", 700)...), "a" + strings.Repeat("ع", 700)},
		"UTF-16BE, short":         {utf16be("x😀y"), "x😀y"},
		"UTF-16BE, odd length":    {append(utf16be("xy"), 0x00), "xy"},
		"UTF-16BE lone surrogate": {append(utf16be("x"), 0xd8, 0x3d), "x\ufffd"},
	} {
		t.Run(name, func(t *testing.T) {
			if got := TextString(c.raw); got != c.full {
				t.Fatalf("TextString: %q, want %q", got, c.full)
			}
			for _, limit := range []int{0, 1, 2, 3, 1023, 1024, 1025} {
				got := TextStringPrefix(c.raw, limit)
				if len(got) > limit || !utf8.ValidString(got) || !strings.HasPrefix(c.full, got) ||
					(len(c.full) > limit && len(got) < limit-3) || (len(c.full) <= limit && got != c.full) {
					t.Fatalf("TextStringPrefix(%d): %d bytes %q…, want the longest prefix of at most %d bytes ending between characters",
						limit, len(got), got[max(0, len(got)-12):], limit)
				}
			}
		})
	}
	s := "a" + strings.Repeat("é", 10)
	for limit := range len(s) + 2 {
		p, q := TextPrefix(s, limit), TextSuffix(s, limit)
		if len(p) > limit || len(q) > limit || !utf8.ValidString(p) || !utf8.ValidString(q) ||
			!strings.HasPrefix(s, p) || !strings.HasSuffix(s, q) || len(p) < min(limit, len(s))-1 || len(q) < min(limit, len(s))-1 {
			t.Fatalf("TextPrefix/TextSuffix(%d): %q %q", limit, p, q)
		}
	}
}
