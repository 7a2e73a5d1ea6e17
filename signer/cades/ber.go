package cades

import "errors"

var errBER = errors.New("bad BER encoding")

// berToDER rewrites indefinite lengths as definite ones (recursively), so
// that encoding/asn1 can read CMS produced by BER encoders. Primitive
// contents are copied unchanged.
func berToDER(b []byte) ([]byte, error) {
	out, rest, err := convertBER(b, 0)
	if err != nil {
		return nil, err
	}
	_ = rest
	return out, nil
}

// convertBER converts one TLV and returns it with the remaining input.
func convertBER(b []byte, depth int) ([]byte, []byte, error) {
	if depth > 64 || len(b) < 2 {
		return nil, nil, errBER
	}
	hdr := 1
	if b[0]&0x1f == 0x1f {
		for hdr < len(b) && b[hdr]&0x80 != 0 {
			hdr++
		}
		hdr++
		if hdr >= len(b) {
			return nil, nil, errBER
		}
	}
	tag := b[:hdr]
	constructed := b[0]&0x20 != 0
	l := b[hdr]
	p := hdr + 1
	if l == 0x80 {
		if !constructed {
			return nil, nil, errBER
		}
		var content []byte
		rest := b[p:]
		for {
			if len(rest) >= 2 && rest[0] == 0 && rest[1] == 0 {
				rest = rest[2:]
				break
			}
			child, r, err := convertBER(rest, depth+1)
			if err != nil {
				return nil, nil, err
			}
			content = append(content, child...)
			rest = r
		}
		return appendTLV(tag, content), rest, nil
	}
	n := 0
	if l&0x80 == 0 {
		n = int(l)
	} else {
		k := int(l & 0x7f)
		if k > 4 || p+k > len(b) {
			return nil, nil, errBER
		}
		for i := 0; i < k; i++ {
			n = n<<8 | int(b[p+i])
		}
		p += k
	}
	if n < 0 || p+n > len(b) {
		return nil, nil, errBER
	}
	body, rest := b[p:p+n], b[p+n:]
	if !constructed {
		return appendTLV(tag, body), rest, nil
	}
	var content []byte
	for len(body) > 0 {
		child, r, err := convertBER(body, depth+1)
		if err != nil {
			return nil, nil, err
		}
		content = append(content, child...)
		body = r
	}
	return appendTLV(tag, content), rest, nil
}

func appendTLV(tag, content []byte) []byte {
	out := append([]byte(nil), tag...)
	n := len(content)
	switch {
	case n < 0x80:
		out = append(out, byte(n))
	case n < 0x100:
		out = append(out, 0x81, byte(n))
	case n < 0x10000:
		out = append(out, 0x82, byte(n>>8), byte(n))
	case n < 0x1000000:
		out = append(out, 0x83, byte(n>>16), byte(n>>8), byte(n))
	default:
		out = append(out, 0x84, byte(n>>24), byte(n>>16), byte(n>>8), byte(n))
	}
	return append(out, content...)
}
