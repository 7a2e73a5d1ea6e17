package pdf

import (
	"unicode/utf16"
	"unicode/utf8"
)

// TextString decodes a PDF text string (UTF-16BE with BOM, UTF-8 with BOM,
// else bytes as PDFDocEncoding approximated by Latin-1).
func TextString(b []byte) string {
	return TextStringPrefix(b, -1)
}

// TextStringPrefix decodes the PDF text string b as TextString does, but
// at most limit bytes of UTF-8 (limit < 0: all), cut between characters:
// a name cut short never ends in half a character (U+FFFD). It reads no
// more of b than it decodes, so a long string costs limit, not its length.
func TextStringPrefix(b []byte, limit int) string {
	fits := func(n, r int) bool { return limit < 0 || n+r <= limit }
	switch {
	case len(b) >= 2 && b[0] == 0xfe && b[1] == 0xff:
		out := make([]byte, 0, min(len(b), 1024))
		for i := 2; i+1 < len(b); i += 2 {
			r := rune(uint16(b[i])<<8 | uint16(b[i+1]))
			if utf16.IsSurrogate(r) && i+3 < len(b) {
				if pair := utf16.DecodeRune(r, rune(uint16(b[i+2])<<8|uint16(b[i+3]))); pair != utf8.RuneError {
					r = pair
					i += 2
				}
			}
			if !fits(len(out), runeLen(r)) {
				break
			}
			out = utf8.AppendRune(out, r)
		}
		return string(out)
	case len(b) >= 3 && b[0] == 0xef && b[1] == 0xbb && b[2] == 0xbf:
		return TextPrefix(string(b[3:]), limit)
	}
	out := make([]byte, 0, min(len(b), 1024))
	for _, c := range b {
		if !fits(len(out), runeLen(rune(c))) {
			break
		}
		out = utf8.AppendRune(out, rune(c))
	}
	return string(out)
}

// runeLen is how many bytes utf8.AppendRune writes for r: a lone
// surrogate is written as U+FFFD.
func runeLen(r rune) int {
	if n := utf8.RuneLen(r); n > 0 {
		return n
	}
	return utf8.RuneLen(utf8.RuneError)
}

// TextPrefix returns the longest prefix of s of at most limit bytes
// (limit < 0: all of s) that does not cut a UTF-8 character.
func TextPrefix(s string, limit int) string {
	if limit < 0 || len(s) <= limit {
		return s
	}
	n := limit
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}

// TextSuffix returns the longest suffix of s of at most limit bytes that
// does not cut a UTF-8 character.
func TextSuffix(s string, limit int) string {
	if limit < 0 || len(s) <= limit {
		return s
	}
	n := len(s) - limit
	for n < len(s) && !utf8.RuneStart(s[n]) {
		n++
	}
	return s[n:]
}
