package hsm

import (
	"errors"
	"fmt"
	"log/slog"
	"strings"
)

// URI is an RFC 7512 pkcs11: URI naming a token object, such as
// pkcs11:token=thiqa;object=citizen-ca;type=private.
//
// PINValue is never formatted: String and LogValue leave it out.
type URI struct {
	// Path attributes.
	Token               string // token label
	Manufacturer        string // token manufacturer
	Serial              string // token serial number
	Model               string // token model
	Object              string // object label (CKA_LABEL)
	ID                  []byte // object id (CKA_ID)
	Type                string // "public", "private", "cert", "secret-key" or "data"
	LibraryManufacturer string
	LibraryDescription  string
	LibraryVersion      string
	SlotDescription     string
	SlotManufacturer    string
	SlotID              string

	// Query attributes.
	PINSource  string // where to read the PIN (file: URI or path)
	PINValue   string // the PIN itself: never logged nor formatted
	ModuleName string
	ModulePath string
}

// uriAttr binds an attribute name to a field, in RFC 7512 order for String.
type uriAttr struct {
	name  string
	field func(*URI) *string
}

var uriPathAttrs = []uriAttr{
	{"token", func(u *URI) *string { return &u.Token }},
	{"manufacturer", func(u *URI) *string { return &u.Manufacturer }},
	{"serial", func(u *URI) *string { return &u.Serial }},
	{"model", func(u *URI) *string { return &u.Model }},
	{"object", func(u *URI) *string { return &u.Object }},
	{"id", nil}, // bytes, handled apart
	{"type", func(u *URI) *string { return &u.Type }},
	{"library-manufacturer", func(u *URI) *string { return &u.LibraryManufacturer }},
	{"library-description", func(u *URI) *string { return &u.LibraryDescription }},
	{"library-version", func(u *URI) *string { return &u.LibraryVersion }},
	{"slot-description", func(u *URI) *string { return &u.SlotDescription }},
	{"slot-manufacturer", func(u *URI) *string { return &u.SlotManufacturer }},
	{"slot-id", func(u *URI) *string { return &u.SlotID }},
}

var uriQueryAttrs = []uriAttr{
	{"pin-source", func(u *URI) *string { return &u.PINSource }},
	{"pin-value", func(u *URI) *string { return &u.PINValue }},
	{"module-name", func(u *URI) *string { return &u.ModuleName }},
	{"module-path", func(u *URI) *string { return &u.ModulePath }},
}

const uriScheme = "pkcs11:"

// ParseURI parses an RFC 7512 pkcs11: URI. Values are percent-decoded;
// unknown attributes, repeated attributes, an unknown object type, bad
// percent-encoding and characters RFC 7512 does not allow are errors. An
// empty value is the same as an absent attribute. Error messages never
// contain the pin-value.
func ParseURI(s string) (URI, error) {
	var u URI
	if len(s) < len(uriScheme) || !strings.EqualFold(s[:len(uriScheme)], uriScheme) {
		return u, errors.New(`hsm: key URI must start with "pkcs11:"`)
	}
	rest := s[len(uriScheme):]
	path, query, hasQuery := strings.Cut(rest, "?")
	seen := make(map[string]bool)
	if path != "" {
		for _, a := range strings.Split(path, ";") {
			if err := u.setAttr(a, uriPathAttrs, isPathChar, seen, "path"); err != nil {
				return URI{}, err
			}
		}
	}
	if hasQuery && query != "" {
		for _, a := range strings.Split(query, "&") {
			if err := u.setAttr(a, uriQueryAttrs, isQueryChar, seen, "query"); err != nil {
				return URI{}, err
			}
		}
	}
	if u.PINSource != "" && u.PINValue != "" {
		return URI{}, errors.New("hsm: key URI has both pin-source and pin-value")
	}
	return u, nil
}

// ObjectLabel returns the object label of uri, a pkcs11: URI called what in
// messages ("key URI", "rootKey"), which must name an object on the token
// tokenLabel (the which token: "configured", "offline") when it names a
// token at all.
func ObjectLabel(what, uri, tokenLabel, which string) (string, error) {
	u, err := ParseURI(uri)
	if err != nil {
		return "", fmt.Errorf("%s %q: %w", what, uri, err)
	}
	if u.Token != "" && u.Token != tokenLabel {
		return "", fmt.Errorf("%s %q names token %q, but the %s token is %q", what, uri, u.Token, which, tokenLabel)
	}
	if u.Object == "" {
		return "", fmt.Errorf("%s %q has no object label", what, uri)
	}
	return u.Object, nil
}

func (u *URI) setAttr(a string, attrs []uriAttr, allowed func(byte) bool, seen map[string]bool, part string) error {
	name, raw, ok := strings.Cut(a, "=")
	if !ok {
		return fmt.Errorf("hsm: key URI %s attribute %q has no value (want name=value)", part, clip(a))
	}
	var def *uriAttr
	for i := range attrs {
		if attrs[i].name == name {
			def = &attrs[i]
		}
	}
	if def == nil {
		names := make([]string, len(attrs))
		for i, d := range attrs {
			names[i] = d.name
		}
		return fmt.Errorf("hsm: key URI has unknown %s attribute %q (known: %s)", part, clip(name), strings.Join(names, ", "))
	}
	if seen[name] {
		return fmt.Errorf("hsm: key URI repeats attribute %q", name)
	}
	seen[name] = true
	v, err := pctDecode(raw, allowed)
	if err != nil {
		if name == "pin-value" {
			return errors.New("hsm: key URI pin-value is malformed")
		}
		return fmt.Errorf("hsm: key URI attribute %q: %w", name, err)
	}
	if name == "id" {
		if len(v) > 0 {
			u.ID = []byte(v)
		}
		return nil
	}
	if name == "type" {
		switch v {
		case "", "public", "private", "cert", "secret-key", "data":
		default:
			return fmt.Errorf("hsm: key URI type %q is not one of public, private, cert, secret-key, data", clip(v))
		}
	}
	*def.field(u) = v
	return nil
}

// clip shortens attacker-sized input for error messages.
func clip(s string) string {
	if len(s) > 64 {
		return s[:64] + "…"
	}
	return s
}

func pctDecode(s string, allowed func(byte) bool) (string, error) {
	if !strings.ContainsRune(s, '%') {
		for i := 0; i < len(s); i++ {
			if !allowed(s[i]) {
				return "", fmt.Errorf("character %q must be percent-encoded", s[i])
			}
		}
		return s, nil
	}
	var b strings.Builder
	b.Grow(len(s))
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '%':
			if i+2 >= len(s) {
				return "", errors.New("truncated percent-encoding")
			}
			hi, lo := unhex(s[i+1]), unhex(s[i+2])
			if hi < 0 || lo < 0 {
				return "", fmt.Errorf("bad percent-encoding %q", s[i:i+3])
			}
			b.WriteByte(byte(hi<<4 | lo))
			i += 2
		case allowed(c):
			b.WriteByte(c)
		default:
			return "", fmt.Errorf("character %q must be percent-encoded", c)
		}
	}
	return b.String(), nil
}

func unhex(c byte) int {
	switch {
	case '0' <= c && c <= '9':
		return int(c - '0')
	case 'a' <= c && c <= 'f':
		return int(c - 'a' + 10)
	case 'A' <= c && c <= 'F':
		return int(c - 'A' + 10)
	}
	return -1
}

func isUnreserved(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' ||
		c == '-' || c == '.' || c == '_' || c == '~'
}

// isPathChar: pk11-pchar less pct-encoded (RFC 7512, section 2.3).
func isPathChar(c byte) bool {
	return isUnreserved(c) || strings.IndexByte(":[]@!$'()*+,=&", c) >= 0
}

// isQueryChar: pk11-qchar less pct-encoded.
func isQueryChar(c byte) bool {
	return isUnreserved(c) || strings.IndexByte(":[]@!$'()*+,=/?|", c) >= 0
}

// String formats the URI, percent-encoding what RFC 7512 requires and the
// id byte by byte. The pin-value is left out.
func (u URI) String() string {
	var b strings.Builder
	b.WriteString(uriScheme)
	first := true
	for _, a := range uriPathAttrs {
		var v string
		if a.field == nil {
			if len(u.ID) == 0 {
				continue
			}
			if !first {
				b.WriteByte(';')
			}
			first = false
			b.WriteString("id=")
			for _, c := range u.ID {
				fmt.Fprintf(&b, "%%%02X", c)
			}
			continue
		}
		if v = *a.field(&u); v == "" {
			continue
		}
		if !first {
			b.WriteByte(';')
		}
		first = false
		b.WriteString(a.name)
		b.WriteByte('=')
		pctEncode(&b, v, isPathChar)
	}
	sep := byte('?')
	for _, a := range uriQueryAttrs {
		if a.name == "pin-value" {
			continue
		}
		v := *a.field(&u)
		if v == "" {
			continue
		}
		b.WriteByte(sep)
		sep = '&'
		b.WriteString(a.name)
		b.WriteByte('=')
		pctEncode(&b, v, isQueryChar)
	}
	return b.String()
}

func pctEncode(b *strings.Builder, v string, allowed func(byte) bool) {
	for i := 0; i < len(v); i++ {
		c := v[i]
		if allowed(c) && c != '=' && c != '&' && c != '?' {
			b.WriteByte(c)
		} else {
			fmt.Fprintf(b, "%%%02X", c)
		}
	}
}

// LogValue logs the URI without its pin-value.
func (u URI) LogValue() slog.Value { return slog.StringValue(u.String()) }
