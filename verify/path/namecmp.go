package path

import (
	"bytes"

	"golang.org/x/crypto/cryptobyte"
	cbasn1 "golang.org/x/crypto/cryptobyte/asn1"
)

// fastNameEqual compares two DER Names as slowNameEqual does, without
// reflection or allocation, when every RDN holds a single attribute whose
// value is an ASCII PrintableString, UTF8String or IA5String (the names
// real hierarchies use); ok is false when slowNameEqual must decide. Path
// building compares names many times per validation: this makes the common
// case cheap without changing the rule (FuzzNameEqual checks that both
// always agree where this one answers).
func fastNameEqual(a, b []byte) (equal, ok bool) {
	ra, okA := rdnSequence(a)
	rb, okB := rdnSequence(b)
	if !okA || !okB {
		return false, false
	}
	// The first difference settles it: the slow path calls the names
	// unequal too, whether or not the rest would parse. Only "equal" needs
	// both names read to the end (a name encoding/asn1 refuses is unequal
	// to anything, so such a name is left to the slow path).
	for !ra.Empty() || !rb.Empty() {
		if ra.Empty() || rb.Empty() {
			return false, true // a different number of RDNs
		}
		oidA, valA, okA := readSingleRDN(&ra)
		oidB, valB, okB := readSingleRDN(&rb)
		if !okA || !okB {
			return false, false
		}
		if !bytes.Equal(oidA, oidB) || !foldedEqual(valA, valB) {
			return false, true
		}
	}
	return true, true
}

// rdnSequence reads the outer SEQUENCE of a Name.
func rdnSequence(der []byte) (cryptobyte.String, bool) {
	s := cryptobyte.String(der)
	var seq cryptobyte.String
	if !s.ReadASN1(&seq, cbasn1.SEQUENCE) || !s.Empty() {
		return nil, false
	}
	return seq, true
}

// readSingleRDN reads one RDN made of exactly one attribute with an ASCII
// string value; it returns the OID's content and the value's bytes.
func readSingleRDN(s *cryptobyte.String) (oid, value []byte, ok bool) {
	var set, atv, o, v cryptobyte.String
	var tag cbasn1.Tag
	if !s.ReadASN1(&set, cbasn1.SET) || !set.ReadASN1(&atv, cbasn1.SEQUENCE) || !set.Empty() ||
		!atv.ReadASN1(&o, cbasn1.OBJECT_IDENTIFIER) || !atv.ReadAnyASN1(&v, &tag) || !atv.Empty() {
		return nil, nil, false
	}
	if !validOID(o) || !asciiString(tag, v) {
		return nil, nil, false
	}
	return o, v, true
}

// validOID accepts what encoding/asn1 parses: minimally encoded
// sub-identifiers that fit in 31 bits (at most four bytes each, here).
func validOID(o []byte) bool {
	if len(o) == 0 || o[len(o)-1]&0x80 != 0 {
		return false
	}
	n := 0
	for _, c := range o {
		if n == 0 && c == 0x80 {
			return false
		}
		n++
		if n > 4 {
			return false
		}
		if c&0x80 == 0 {
			n = 0
		}
	}
	return true
}

// asciiString accepts the string types encoding/asn1 decodes to a Go
// string whose bytes are all ASCII and valid for the type.
func asciiString(tag cbasn1.Tag, v []byte) bool {
	switch tag {
	case cbasn1.PrintableString:
		for _, c := range v {
			if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || '\'' <= c && c <= ')' ||
				'+' <= c && c <= '/' || c == ' ' || c == ':' || c == '=' || c == '?' || c == '*' || c == '&') {
				return false
			}
		}
		return true
	case cbasn1.UTF8String, cbasn1.IA5String:
		for _, c := range v {
			if c >= 0x80 {
				return false
			}
		}
		return true
	}
	return false
}

// foldedEqual compares two ASCII values after the preparation of
// normValue: lower case, runs of white space as one space, none at
// either end.
func foldedEqual(a, b []byte) bool {
	i, j := 0, 0
	for {
		ca, na := nextFolded(a, &i)
		cb, nb := nextFolded(b, &j)
		if !na || !nb {
			return na == nb
		}
		if ca != cb {
			return false
		}
	}
}

// nextFolded returns the next byte of the prepared form of s from *i.
func nextFolded(s []byte, i *int) (byte, bool) {
	if *i >= len(s) {
		return 0, false
	}
	if isASCIISpace(s[*i]) {
		start := *i
		for *i < len(s) && isASCIISpace(s[*i]) {
			*i++
		}
		if start == 0 || *i == len(s) {
			// Leading or trailing white space is dropped.
			return nextFolded(s, i)
		}
		return ' ', true
	}
	c := s[*i]
	*i++
	if 'A' <= c && c <= 'Z' {
		c += 'a' - 'A'
	}
	return c, true
}

// isASCIISpace is unicode.IsSpace for ASCII.
func isASCIISpace(c byte) bool {
	return c == ' ' || c == '\t' || c == '\n' || c == '\v' || c == '\f' || c == '\r'
}
