package pdfdoc

import (
	"bytes"
	"io"
	"strconv"
)

// maxDepth bounds nesting of arrays and dictionaries.
const maxDepth = 64

// lexer tokenises PDF syntax read from an io.ReaderAt through a small
// window, or straight from the bytes of a Slicer.
type lexer struct {
	r        io.ReaderAt
	size     int64
	pos      int64 // absolute position of the next byte
	buf      []byte
	borrowed bool  // buf is the reader's own memory: never written
	bpos     int64 // absolute position of buf[0]
	err      error
	back     []any // pushed-back tokens
}

// Slicer is an io.ReaderAt over memory that can lend its bytes: Slice
// returns up to n bytes from off, without copying, or nil when it cannot.
// The caller must not modify them. Files held in memory read faster
// through it.
type Slicer interface {
	io.ReaderAt
	Slice(off int64, n int) []byte
}

// memory is a byte slice as a Slicer.
type memory []byte

func (m memory) ReadAt(p []byte, off int64) (int, error) {
	return bytes.NewReader(m).ReadAt(p, off)
}

func (m memory) Slice(off int64, n int) []byte {
	if off < 0 || off >= int64(len(m)) || n <= 0 {
		return nil
	}
	return m[off:min(int64(len(m)), off+int64(n))]
}

func newLexer(r io.ReaderAt, size, pos int64) *lexer {
	return &lexer{r: r, size: size, pos: pos}
}

func newBytesLexer(b []byte) *lexer {
	return &lexer{r: memory(b), size: int64(len(b))}
}

// lendWindow is how much of a Slicer a lexer looks at at once.
const lendWindow = 64 << 10

// peek returns the byte at the current position, or -1 at the end.
func (l *lexer) peek() int {
	if l.pos >= l.size || l.pos < 0 {
		return -1
	}
	if l.pos < l.bpos || l.pos >= l.bpos+int64(len(l.buf)) {
		if sl, ok := l.r.(Slicer); ok {
			if b := sl.Slice(l.pos, int(min(lendWindow, l.size-l.pos))); len(b) > 0 {
				l.buf, l.borrowed, l.bpos = b, true, l.pos
				return int(b[0])
			}
		}
		if l.borrowed {
			l.buf, l.borrowed = nil, false
		}
		n := int64(4096)
		if l.pos+n > l.size {
			n = l.size - l.pos
		}
		if cap(l.buf) < int(n) {
			l.buf = make([]byte, n)
		}
		l.buf = l.buf[:n]
		m, err := l.r.ReadAt(l.buf, l.pos)
		if m <= 0 {
			if err == nil {
				err = io.ErrUnexpectedEOF
			}
			l.err = err
			l.buf = l.buf[:0]
			return -1
		}
		l.buf = l.buf[:m]
		l.bpos = l.pos
	}
	return int(l.buf[l.pos-l.bpos])
}

func (l *lexer) next() int {
	c := l.peek()
	if c >= 0 {
		l.pos++
	}
	return c
}

func isSpace(c int) bool {
	return c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == '\f' || c == 0
}

func isDelim(c int) bool {
	switch c {
	case '(', ')', '<', '>', '[', ']', '{', '}', '/', '%':
		return true
	}
	return false
}

func (l *lexer) skipSpace() {
	for {
		c := l.peek()
		switch {
		case isSpace(c):
			l.pos++
		case c == '%':
			for c != '\n' && c != '\r' && c >= 0 {
				c = l.next()
			}
		default:
			return
		}
	}
}

type delim string

// token returns the next token: int64, float64, String, HexString, Name,
// keyword, delim ("[", "]", "<<", ">>") or io.EOF as error.
func (l *lexer) token() (any, error) {
	if n := len(l.back); n > 0 {
		t := l.back[n-1]
		l.back = l.back[:n-1]
		return t, nil
	}
	l.skipSpace()
	c := l.next()
	switch {
	case c < 0:
		return nil, malformed("unexpected end of data at %d", l.pos)
	case c == '[' || c == ']' || c == '{' || c == '}':
		return delim(string(rune(c))), nil
	case c == '<':
		if l.peek() == '<' {
			l.pos++
			return delim("<<"), nil
		}
		return l.hexString()
	case c == '>':
		if l.next() == '>' {
			return delim(">>"), nil
		}
		return nil, malformed("stray '>' at %d", l.pos-1)
	case c == '(':
		return l.literalString()
	case c == '/':
		return l.name()
	case c == ')':
		return nil, malformed("stray ')' at %d", l.pos-1)
	}
	var word []byte
	word = append(word, byte(c))
	for {
		c = l.peek()
		if c < 0 || isSpace(c) || isDelim(c) {
			break
		}
		if len(word) > 256 {
			return nil, malformed("token too long at %d", l.pos)
		}
		word = append(word, byte(c))
		l.pos++
	}
	s := string(word)
	if i, err := strconv.ParseInt(s, 10, 64); err == nil {
		return i, nil
	}
	if looksNumeric(s) {
		if f, err := strconv.ParseFloat(s, 64); err == nil {
			return f, nil
		}
	}
	return keyword(s), nil
}

func looksNumeric(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= '0' && c <= '9' || c == '.' || c == '-' || c == '+') {
			return false
		}
	}
	return s != ""
}

func (l *lexer) unread(t any) { l.back = append(l.back, t) }

func unhex(c int) int {
	switch {
	case c >= '0' && c <= '9':
		return c - '0'
	case c >= 'a' && c <= 'f':
		return c - 'a' + 10
	case c >= 'A' && c <= 'F':
		return c - 'A' + 10
	}
	return -1
}

func (l *lexer) hexString() (any, error) {
	var out []byte
	hi := -1
	for {
		c := l.next()
		switch {
		case c < 0:
			return nil, malformed("unterminated hex string")
		case c == '>':
			if hi >= 0 {
				out = append(out, byte(hi<<4))
			}
			return HexString(out), nil
		case isSpace(c):
			continue
		}
		v := unhex(c)
		if v < 0 {
			return nil, malformed("bad hex digit at %d", l.pos-1)
		}
		if hi < 0 {
			hi = v
		} else {
			out = append(out, byte(hi<<4|v))
			hi = -1
		}
	}
}

func (l *lexer) literalString() (any, error) {
	var out []byte
	depth := 1
	for {
		c := l.next()
		switch c {
		case -1:
			return nil, malformed("unterminated string")
		case '(':
			depth++
		case ')':
			depth--
			if depth == 0 {
				return String(out), nil
			}
		case '\\':
			c = l.next()
			switch c {
			case -1:
				return nil, malformed("unterminated string")
			case 'n':
				c = '\n'
			case 'r':
				c = '\r'
			case 't':
				c = '\t'
			case 'b':
				c = '\b'
			case 'f':
				c = '\f'
			case '\r':
				if l.peek() == '\n' {
					l.pos++
				}
				continue
			case '\n':
				continue
			default:
				if c >= '0' && c <= '7' {
					v := c - '0'
					for i := 0; i < 2; i++ {
						d := l.peek()
						if d < '0' || d > '7' {
							break
						}
						l.pos++
						v = v*8 + d - '0'
					}
					c = v & 0xff
				}
			}
		}
		out = append(out, byte(c))
	}
}

func (l *lexer) name() (any, error) {
	var out []byte
	for {
		c := l.peek()
		if c < 0 || isSpace(c) || isDelim(c) {
			return Name(out), nil
		}
		l.pos++
		if c == '#' {
			h, lo := unhex(l.peek()), -1
			if h >= 0 {
				l.pos++
				lo = unhex(l.peek())
			}
			if h < 0 || lo < 0 {
				return nil, malformed("bad name escape at %d", l.pos)
			}
			l.pos++
			c = h<<4 | lo
		}
		if len(out) > 512 {
			return nil, malformed("name too long")
		}
		out = append(out, byte(c))
	}
}

// object parses one object (references "n g R" included; streams are
// handled by the caller, which sees the "stream" keyword).
func (l *lexer) object(depth int) (Object, error) {
	if depth > maxDepth {
		return nil, malformed("objects nested too deeply")
	}
	t, err := l.token()
	if err != nil {
		return nil, err
	}
	switch v := t.(type) {
	case delim:
		switch v {
		case "[":
			var arr Array
			for {
				t, err := l.token()
				if err != nil {
					return nil, err
				}
				if t == delim("]") {
					return arr, nil
				}
				l.unread(t)
				o, err := l.object(depth + 1)
				if err != nil {
					return nil, err
				}
				arr = append(arr, o)
			}
		case "<<":
			d := Dict{}
			for {
				t, err := l.token()
				if err != nil {
					return nil, err
				}
				if t == delim(">>") {
					return d, nil
				}
				k, ok := t.(Name)
				if !ok {
					return nil, malformed("dictionary key is not a name at %d", l.pos)
				}
				o, err := l.object(depth + 1)
				if err != nil {
					return nil, err
				}
				if o != nil {
					d[k] = o
				}
			}
		}
		return nil, malformed("unexpected %q at %d", string(v), l.pos)
	case int64:
		// Maybe "n g R".
		t2, err := l.token()
		if err != nil {
			return v, nil
		}
		if g, ok := t2.(int64); ok {
			t3, err := l.token()
			if err == nil && t3 == keyword("R") {
				if v < 0 || g < 0 || v > 1<<30 || g > 65535 {
					return nil, malformed("bad reference %d %d R", v, g)
				}
				return Ref{Num: int(v), Gen: int(g)}, nil
			}
			if err == nil {
				l.unread(t3)
			}
		}
		l.unread(t2)
		return v, nil
	case keyword:
		switch v {
		case "null":
			return nil, nil
		case "true":
			return true, nil
		case "false":
			return false, nil
		}
		return nil, malformed("unexpected keyword %q at %d", string(v), l.pos)
	case HexString:
		return String(v), nil
	}
	return t, nil
}
