package tsp

import (
	"encoding/asn1"
	"math/big"

	"golang.org/x/crypto/cryptobyte"
)

// Direct DER appenders for the per-token path. cryptobyte's Builder
// reserves one length byte per nested element and moves the contents when
// the length needs more, which for a 2 KB token nested six deep costs more
// than the rest of the encoding; here every length is known before its
// element is written, so each byte is written once.

// lenSize is the size of the DER length field for n content bytes.
func lenSize(n int) int {
	switch {
	case n < 0x80:
		return 1
	case n <= 0xff:
		return 2
	case n <= 0xffff:
		return 3
	case n <= 0xffffff:
		return 4
	}
	return 5
}

// tlvSize is the size of an element with one tag byte and n content bytes.
func tlvSize(n int) int { return 1 + lenSize(n) + n }

// appendHeader appends a one-byte tag and the DER length n.
func appendHeader(dst []byte, tag byte, n int) []byte {
	dst = append(dst, tag)
	switch lenSize(n) {
	case 1:
		return append(dst, byte(n))
	case 2:
		return append(dst, 0x81, byte(n))
	case 3:
		return append(dst, 0x82, byte(n>>8), byte(n))
	case 4:
		return append(dst, 0x83, byte(n>>16), byte(n>>8), byte(n))
	}
	return append(dst, 0x84, byte(n>>24), byte(n>>16), byte(n>>8), byte(n))
}

// appendTLV appends a complete element.
func appendTLV(dst []byte, tag byte, content []byte) []byte {
	return append(appendHeader(dst, tag, len(content)), content...)
}

// DER tags used by the appenders.
const (
	tagBoolean         = 0x01
	tagInteger         = 0x02
	tagOctetString     = 0x04
	tagOID             = 0x06
	tagUTCTime         = 0x17
	tagGeneralizedTime = 0x18
	tagSequence        = 0x30
	tagSet             = 0x31
	tagContext0        = 0xa0 // [0] constructed
	tagContext1        = 0xa1 // [1] constructed
	tagContext4        = 0xa4 // [4] constructed
	tagImplicit0       = 0x80 // [0] primitive
	tagImplicit1       = 0x81 // [1] primitive
)

// appendInteger appends the INTEGER n (any sign).
func appendInteger(dst []byte, n *big.Int) []byte {
	if n.Sign() < 0 {
		// Rare (a negative nonce): let cryptobyte do the two's complement.
		var b cryptobyte.Builder
		b.AddASN1BigInt(n)
		out, _ := b.Bytes() // a big.Int always encodes
		return append(dst, out...)
	}
	var buf [80]byte
	mag := buf[:0]
	if n.BitLen() <= 8*len(buf) {
		mag = n.FillBytes(buf[:(n.BitLen()+7)/8])
	} else {
		mag = n.Bytes()
	}
	pad := len(mag) == 0 || mag[0]&0x80 != 0
	l := len(mag)
	if pad {
		l++
	}
	dst = appendHeader(dst, tagInteger, l)
	if pad {
		dst = append(dst, 0)
	}
	return append(dst, mag...)
}

// appendSmallInt appends the INTEGER v (v >= 0) with the given tag.
func appendSmallInt(dst []byte, tag byte, v int64) []byte {
	var buf [9]byte
	i := len(buf)
	for {
		i--
		buf[i] = byte(v)
		v >>= 8
		if v == 0 {
			break
		}
	}
	if buf[i]&0x80 != 0 {
		i--
		buf[i] = 0
	}
	return appendTLV(dst, tag, buf[i:])
}

// appendOID appends an OBJECT IDENTIFIER; ok is false for one that has no
// DER encoding (fewer than two arcs, or a first arc over 2).
func appendOID(dst []byte, oid asn1.ObjectIdentifier) ([]byte, bool) {
	if len(oid) < 2 || oid[0] < 0 || oid[0] > 2 || oid[1] < 0 || (oid[0] < 2 && oid[1] >= 40) {
		return dst, false
	}
	var buf [64]byte
	body := appendBase128(buf[:0], oid[0]*40+oid[1])
	for _, arc := range oid[2:] {
		if arc < 0 {
			return dst, false
		}
		body = appendBase128(body, arc)
	}
	return appendTLV(dst, tagOID, body), true
}

func appendBase128(dst []byte, v int) []byte {
	n := 1
	for t := v >> 7; t > 0; t >>= 7 {
		n++
	}
	for i := n - 1; i >= 0; i-- {
		b := byte(v>>(7*i)) & 0x7f
		if i != 0 {
			b |= 0x80
		}
		dst = append(dst, b)
	}
	return dst
}
