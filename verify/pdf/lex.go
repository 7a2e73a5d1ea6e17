package pdf

import (
	"bufio"
	"bytes"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"strconv"
)

// Limits bound the work done on hostile input.
const (
	maxDepth       = 64
	maxStringLen   = 32 << 20
	maxArrayLen    = 1 << 20
	maxDictLen     = 1 << 16
	maxTokenLen    = 1 << 16
	maxObjectBytes = 64 << 20
)

// ErrMalformed is wrapped by every syntax error.
var ErrMalformed = errors.New("pdf: malformed")

func malformed(format string, a ...any) error {
	return fmt.Errorf("%w: %s", ErrMalformed, fmt.Sprintf(format, a...))
}

// lexer reads PDF tokens from a position of the file.
type lexer struct {
	br   *bufio.Reader
	pos  int64
	peek []token
	// src and size are what br reads (src from offset 0): hexString looks
	// ahead in it to size its result.
	src  io.ReaderAt
	size int64
}

type tokKind int

const (
	tEOF tokKind = iota
	tKeyword
	tInt
	tReal
	tName
	tString
	tArrayOpen
	tArrayClose
	tDictOpen
	tDictClose
)

type token struct {
	kind  tokKind
	s     string
	i     int64
	f     float64
	str   String
	start int64
}

// lexerBufSize is the read-ahead of a lexer: objects are small, and long
// strings are read in runs of this size.
const lexerBufSize = 4 << 10

func newLexer(r io.ReaderAt, size, off int64) *lexer {
	return newLexerWith(nil, r, size, off)
}

// newLexerWith is newLexer reusing br (when not nil) as its read-ahead.
func newLexerWith(br *bufio.Reader, r io.ReaderAt, size, off int64) *lexer {
	if off < 0 || off > size {
		off = size
	}
	src := io.NewSectionReader(r, off, size-off)
	if br == nil {
		br = bufio.NewReaderSize(src, lexerBufSize)
	} else {
		br.Reset(src)
	}
	return &lexer{br: br, pos: off, src: r, size: size}
}

// hexDigitsAhead returns an upper bound of the number of digits of the
// hex string whose '<' was just read: the distance to the next '>' (0 when
// the string ends within the read-ahead, or no '>' comes within
// maxStringLen bytes' worth of digits). It reads the source again in small
// windows, on the stack.
func (l *lexer) hexDigitsAhead() int64 {
	if b, _ := l.br.Peek(l.br.Buffered()); bytes.IndexByte(b, '>') >= 0 {
		return 0 // short: ends within what is buffered
	}
	var w [4 << 10]byte
	for off := l.pos; off < l.size && off-l.pos <= 2*maxStringLen; off += int64(len(w)) {
		n, _ := l.src.ReadAt(w[:], off)
		if n <= 0 {
			return 0
		}
		if i := bytes.IndexByte(w[:n], '>'); i >= 0 {
			return off - l.pos + int64(i)
		}
	}
	return 0
}

func (l *lexer) readByte() (byte, error) {
	b, err := l.br.ReadByte()
	if err == nil {
		l.pos++
	}
	return b, err
}

func (l *lexer) unread() {
	if l.br.UnreadByte() == nil {
		l.pos--
	}
}

func isSpace(b byte) bool {
	return b == ' ' || b == '\t' || b == '\n' || b == '\r' || b == '\f' || b == 0
}

func isDelim(b byte) bool {
	switch b {
	case '(', ')', '<', '>', '[', ']', '{', '}', '/', '%':
		return true
	}
	return false
}

func (l *lexer) skipSpace() error {
	for {
		b, err := l.readByte()
		if err != nil {
			return err
		}
		if b == '%' {
			for {
				c, err := l.readByte()
				if err != nil {
					return err
				}
				if c == '\n' || c == '\r' {
					break
				}
			}
			continue
		}
		if !isSpace(b) {
			l.unread()
			return nil
		}
	}
}

func (l *lexer) pushBack(t token) { l.peek = append(l.peek, t) }

func (l *lexer) next() (token, error) {
	if n := len(l.peek); n > 0 {
		t := l.peek[n-1]
		l.peek = l.peek[:n-1]
		return t, nil
	}
	if err := l.skipSpace(); err != nil {
		if err == io.EOF {
			return token{kind: tEOF, start: l.pos}, nil
		}
		return token{}, err
	}
	start := l.pos
	b, _ := l.readByte()
	switch b {
	case '[':
		return token{kind: tArrayOpen, start: start}, nil
	case ']':
		return token{kind: tArrayClose, start: start}, nil
	case '<':
		c, err := l.readByte()
		if err != nil {
			return token{}, malformed("truncated at %d", start)
		}
		if c == '<' {
			return token{kind: tDictOpen, start: start}, nil
		}
		l.unread()
		s, err := l.hexString()
		if err != nil {
			return token{}, err
		}
		s.Start, s.End = start, l.pos
		return token{kind: tString, str: s, start: start}, nil
	case '>':
		c, err := l.readByte()
		if err != nil || c != '>' {
			return token{}, malformed("stray '>' at %d", start)
		}
		return token{kind: tDictClose, start: start}, nil
	case '(':
		s, err := l.litString()
		if err != nil {
			return token{}, err
		}
		s.Start, s.End = start, l.pos
		return token{kind: tString, str: s, start: start}, nil
	case '/':
		name, err := l.regular()
		if err != nil {
			return token{}, err
		}
		return token{kind: tName, s: decodeName(name), start: start}, nil
	case ')', '{', '}':
		return token{kind: tKeyword, s: string(b), start: start}, nil
	}
	l.unread()
	w, err := l.regular()
	if err != nil {
		return token{}, err
	}
	if w == "" || !(w[0] == '.' || w[0] == '-' || w[0] == '+' || (w[0] >= '0' && w[0] <= '9')) {
		return token{kind: tKeyword, s: w, start: start}, nil // obj, R, true…: no number parse (and no error value) needed
	}
	if i, err := strconv.ParseInt(w, 10, 64); err == nil {
		return token{kind: tInt, i: i, s: w, start: start}, nil
	}
	if f, err := strconv.ParseFloat(w, 64); err == nil && (w[0] == '.' || w[0] == '-' || w[0] == '+' || (w[0] >= '0' && w[0] <= '9')) {
		return token{kind: tReal, f: f, s: w, start: start}, nil
	}
	return token{kind: tKeyword, s: w, start: start}, nil
}

func (l *lexer) regular() (string, error) {
	var buf []byte
	for {
		b, err := l.readByte()
		if err != nil {
			break
		}
		if isSpace(b) || isDelim(b) {
			l.unread()
			break
		}
		buf = append(buf, b)
		if len(buf) > maxTokenLen {
			return "", malformed("token too long at %d", l.pos)
		}
	}
	return string(buf), nil
}

func decodeName(s string) string {
	if !bytes.ContainsRune([]byte(s), '#') {
		return s
	}
	var out []byte
	for i := 0; i < len(s); i++ {
		if s[i] == '#' && i+2 < len(s)+0 && i+2 <= len(s)-1 {
			if v, err := strconv.ParseUint(s[i+1:i+3], 16, 8); err == nil {
				out = append(out, byte(v))
				i += 2
				continue
			}
		}
		out = append(out, s[i])
	}
	return string(out)
}

func unhex(b byte) (byte, bool) {
	switch {
	case b >= '0' && b <= '9':
		return b - '0', true
	case b >= 'a' && b <= 'f':
		return b - 'a' + 10, true
	case b >= 'A' && b <= 'F':
		return b - 'A' + 10, true
	}
	return 0, false
}

// hexValue maps a byte of a hex string to its value, hexSpace for white
// space (skipped) and hexBad for anything else.
var hexValue = func() (t [256]byte) {
	for i := range t {
		b := byte(i)
		switch v, ok := unhex(b); {
		case ok:
			t[i] = v
		case isSpace(b):
			t[i] = hexSpace
		default:
			t[i] = hexBad
		}
	}
	return t
}()

const (
	hexSpace = 0xfe
	hexBad   = 0xff
)

func (l *lexer) hexString() (String, error) {
	var out []byte
	if n := l.hexDigitsAhead(); n > lexerBufSize {
		// Long (a signature value): one allocation of the right size
		// instead of a series of doublings.
		out = make([]byte, 0, n/2+1)
	}
	var hi byte
	half := false
	for {
		// Whole buffered runs up to the closing '>' at a time: signature
		// values are tens of KiB of hex.
		chunk, err := l.br.ReadSlice('>')
		l.pos += int64(len(chunk))
		done := err == nil
		if done {
			chunk = chunk[:len(chunk)-1]
		} else if !errors.Is(err, bufio.ErrBufferFull) {
			return String{}, malformed("unterminated hex string")
		}
		if need := len(out) + len(chunk)/2 + 1; need > cap(out) {
			// Double: append's gentler growth for large slices costs
			// several times the final size on long signature values.
			grown := make([]byte, len(out), max(need, 2*cap(out)))
			copy(grown, out)
			out = grown
		}
		for i := 0; i < len(chunk); {
			if !half {
				// encoding/hex up to the first byte that is not a digit
				// (white space, or an error found below).
				even := (len(chunk) - i) &^ 1
				n := len(out)
				k, _ := hex.Decode(out[n:n+even/2], chunk[i:i+even])
				out = out[:n+k]
				i += 2 * k
				if i >= len(chunk) {
					break
				}
			}
			v := hexValue[chunk[i]]
			if v >= 16 {
				if v != hexSpace {
					return String{}, malformed("bad hex digit at %d", l.pos-int64(len(chunk))+int64(i))
				}
			} else if half {
				out = append(out, hi<<4|v)
				half = false
			} else {
				hi, half = v, true
			}
			i++
		}
		if len(out) > maxStringLen {
			return String{}, malformed("string too long")
		}
		if done {
			break
		}
	}
	if half {
		out = append(out, hi<<4)
	}
	if len(out) == 0 {
		out = nil
	}
	return String{Bytes: out, Hex: true}, nil
}

func (l *lexer) litString() (String, error) {
	var out []byte
	depth := 1
	for {
		b, err := l.readByte()
		if err != nil {
			return String{}, malformed("unterminated string")
		}
		if len(out) > maxStringLen {
			return String{}, malformed("string too long")
		}
		switch b {
		case '(':
			depth++
		case ')':
			depth--
			if depth == 0 {
				return String{Bytes: out}, nil
			}
		case '\\':
			c, err := l.readByte()
			if err != nil {
				return String{}, malformed("unterminated string")
			}
			switch c {
			case 'n':
				out = append(out, '\n')
			case 'r':
				out = append(out, '\r')
			case 't':
				out = append(out, '\t')
			case 'b':
				out = append(out, '\b')
			case 'f':
				out = append(out, '\f')
			case '\r':
				if d, err := l.readByte(); err == nil && d != '\n' {
					l.unread()
				}
			case '\n':
			default:
				if c >= '0' && c <= '7' {
					v := int(c - '0')
					for k := 0; k < 2; k++ {
						d, err := l.readByte()
						if err != nil {
							break
						}
						if d < '0' || d > '7' {
							l.unread()
							break
						}
						v = v*8 + int(d-'0')
					}
					out = append(out, byte(v))
				} else {
					out = append(out, c)
				}
			}
			continue
		}
		out = append(out, b)
	}
}

// object parses one object; at the top level "n g obj" headers are handled
// by the caller. Indirect references are recognised here.
func (l *lexer) object(depth int) (Object, error) {
	if depth > maxDepth {
		return nil, malformed("nesting deeper than %d", maxDepth)
	}
	t, err := l.next()
	if err != nil {
		return nil, err
	}
	switch t.kind {
	case tEOF:
		return nil, malformed("unexpected end of file")
	case tInt:
		t2, err := l.next()
		if err != nil {
			return nil, err
		}
		if t2.kind == tInt {
			t3, err := l.next()
			if err != nil {
				return nil, err
			}
			if t3.kind == tKeyword && t3.s == "R" {
				return Ref{Num: t.i, Gen: t2.i}, nil
			}
			l.pushBack(t3)
		}
		l.pushBack(t2)
		return t.i, nil
	case tReal:
		return t.f, nil
	case tName:
		return Name(t.s), nil
	case tString:
		return t.str, nil
	case tArrayOpen:
		var arr Array
		for {
			t, err := l.next()
			if err != nil {
				return nil, err
			}
			if t.kind == tArrayClose {
				return arr, nil
			}
			if t.kind == tEOF {
				return nil, malformed("unterminated array")
			}
			l.pushBack(t)
			o, err := l.object(depth + 1)
			if err != nil {
				return nil, err
			}
			if len(arr) >= maxArrayLen {
				return nil, malformed("array too long")
			}
			arr = append(arr, o)
		}
	case tDictOpen:
		d := Dict{}
		for {
			t, err := l.next()
			if err != nil {
				return nil, err
			}
			if t.kind == tDictClose {
				return d, nil
			}
			if t.kind != tName {
				return nil, malformed("dictionary key is not a name at %d", t.start)
			}
			v, err := l.object(depth + 1)
			if err != nil {
				return nil, err
			}
			if len(d) >= maxDictLen {
				return nil, malformed("dictionary too large")
			}
			if v != nil {
				d[Name(t.s)] = v
			}
		}
	case tKeyword:
		switch t.s {
		case "true":
			return true, nil
		case "false":
			return false, nil
		case "null":
			return nil, nil
		}
		return nil, malformed("unexpected keyword %q at %d", t.s, t.start)
	}
	return nil, malformed("unexpected token at %d", t.start)
}
