package cms

import "errors"

// maxBERDepth bounds nesting while normalising BER.
const maxBERDepth = 64

// normalizeBER rewrites indefinite-length encodings as definite lengths so
// the DER parser can read BER-encoded CMS (some PDF signers emit it). DER
// input is returned unchanged.
func normalizeBER(in []byte) ([]byte, error) {
	if !hasIndefinite(in, 0) {
		return in, nil
	}
	out, rest, err := berElement(in, 0)
	if err != nil {
		return nil, err
	}
	return append(out, rest...), nil
}

// hasIndefinite scans the first element for an indefinite length cheaply.
func hasIndefinite(in []byte, depth int) bool {
	if len(in) < 2 || depth > maxBERDepth {
		return false
	}
	tagLen := 1
	if in[0]&0x1f == 0x1f {
		for tagLen < len(in) && in[tagLen]&0x80 != 0 {
			tagLen++
		}
		tagLen++
	}
	if tagLen >= len(in) {
		return false
	}
	if in[tagLen] == 0x80 {
		return true
	}
	_, hdr, n, err := readLen(in, tagLen)
	if err != nil || in[0]&0x20 == 0 {
		return false
	}
	body := in[hdr:]
	if n > len(body) {
		return false
	}
	body = body[:n]
	for len(body) > 0 {
		if hasIndefinite(body, depth+1) {
			return true
		}
		_, h, l, err := readLenAt(body)
		if err != nil || h+l > len(body) {
			return false
		}
		body = body[h+l:]
	}
	return false
}

func readLenAt(in []byte) (bool, int, int, error) {
	tagLen := 1
	if len(in) == 0 {
		return false, 0, 0, errors.New("ber: empty")
	}
	if in[0]&0x1f == 0x1f {
		for tagLen < len(in) && in[tagLen]&0x80 != 0 {
			tagLen++
		}
		tagLen++
	}
	return readLen(in, tagLen)
}

// readLen returns (indefinite, header length, content length).
func readLen(in []byte, tagLen int) (bool, int, int, error) {
	if tagLen >= len(in) {
		return false, 0, 0, errors.New("ber: truncated header")
	}
	b := in[tagLen]
	if b == 0x80 {
		return true, tagLen + 1, 0, nil
	}
	if b < 0x80 {
		return false, tagLen + 1, int(b), nil
	}
	n := int(b & 0x7f)
	if n > 4 || tagLen+1+n > len(in) {
		return false, 0, 0, errors.New("ber: bad length")
	}
	l := 0
	for i := 0; i < n; i++ {
		l = l<<8 | int(in[tagLen+1+i])
	}
	if l < 0 || l > len(in) {
		return false, 0, 0, errors.New("ber: length too large")
	}
	return false, tagLen + 1 + n, l, nil
}

func encodeLen(n int) []byte {
	if n < 0x80 {
		return []byte{byte(n)}
	}
	var b []byte
	for v := n; v > 0; v >>= 8 {
		b = append([]byte{byte(v)}, b...)
	}
	return append([]byte{0x80 | byte(len(b))}, b...)
}

// berElement converts one element and returns it with the remaining input.
func berElement(in []byte, depth int) ([]byte, []byte, error) {
	if depth > maxBERDepth {
		return nil, nil, errors.New("ber: nesting too deep")
	}
	tagLen := 1
	if len(in) == 0 {
		return nil, nil, errors.New("ber: truncated")
	}
	if in[0]&0x1f == 0x1f {
		for tagLen < len(in) && in[tagLen]&0x80 != 0 {
			tagLen++
		}
		tagLen++
	}
	indef, hdr, l, err := readLen(in, tagLen)
	if err != nil {
		return nil, nil, err
	}
	tag := in[:tagLen]
	constructed := in[0]&0x20 != 0
	if !indef {
		if hdr+l > len(in) {
			return nil, nil, errors.New("ber: truncated content")
		}
		body := in[hdr : hdr+l]
		if !constructed {
			return in[:hdr+l], in[hdr+l:], nil
		}
		var content []byte
		for len(body) > 0 {
			el, rest, err := berElement(body, depth+1)
			if err != nil {
				return nil, nil, err
			}
			content = append(content, el...)
			body = rest
		}
		out := append(append(append([]byte{}, tag...), encodeLen(len(content))...), content...)
		return out, in[hdr+l:], nil
	}
	if !constructed {
		return nil, nil, errors.New("ber: indefinite length on a primitive")
	}
	rest := in[hdr:]
	var content []byte
	for {
		if len(rest) >= 2 && rest[0] == 0 && rest[1] == 0 {
			rest = rest[2:]
			break
		}
		if len(rest) == 0 {
			return nil, nil, errors.New("ber: missing end-of-contents")
		}
		el, r, err := berElement(rest, depth+1)
		if err != nil {
			return nil, nil, err
		}
		content = append(content, el...)
		rest = r
	}
	out := append(append(append([]byte{}, tag...), encodeLen(len(content))...), content...)
	return out, rest, nil
}
