package pdf

import (
	"bytes"
	"strings"
	"testing"
)

func BenchmarkHexString(b *testing.B) {
	src := []byte("<" + strings.Repeat("3082", 2700) + strings.Repeat("0", 26780) + ">")
	b.SetBytes(int64(len(src)))
	for b.Loop() {
		l := newLexer(bytes.NewReader(src), int64(len(src)), 0)
		if _, err := l.next(); err != nil {
			b.Fatal(err)
		}
	}
}

// TestHexString checks the decoder against a byte-at-a-time reference on
// strings with white space anywhere (also across read-ahead boundaries)
// and an odd number of digits.
func TestHexString(t *testing.T) {
	ref := func(s string) []byte {
		var out []byte
		var digits []byte
		for i := 0; i < len(s); i++ {
			if !isSpace(s[i]) {
				digits = append(digits, s[i])
			}
		}
		if len(digits)%2 == 1 {
			digits = append(digits, '0')
		}
		for i := 0; i+1 < len(digits); i += 2 {
			a, _ := unhex(digits[i])
			b, _ := unhex(digits[i+1])
			out = append(out, a<<4|b)
		}
		return out
	}
	for _, s := range []string{
		"", "a", "AbC", "0 1\n2\r3\t4\f5\x006", strings.Repeat("0123456789abcdefABCDEF ", 600) + "f",
		strings.Repeat("00", lexerBufSize/2-1) + " " + strings.Repeat("1", lexerBufSize+3),
		strings.Repeat("7", 3*lexerBufSize+1),
	} {
		src := "<" + s + ">"
		l := newLexer(bytes.NewReader([]byte(src)), int64(len(src)), 0)
		tok, err := l.next()
		if err != nil || tok.kind != tString || !bytes.Equal(tok.str.Bytes, ref(s)) || tok.str.End != int64(len(src)) {
			t.Fatalf("%.40q…: %v %v end %d", s, err, tok.kind, tok.str.End)
		}
	}
	for _, bad := range []string{"<12x4>", "<12", "<" + strings.Repeat("0", 5000) + "g>"} {
		l := newLexer(bytes.NewReader([]byte(bad)), int64(len(bad)), 0)
		if _, err := l.next(); err == nil {
			t.Fatalf("%.20q: no error", bad)
		}
	}
}
