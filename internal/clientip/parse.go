package clientip

import (
	"net/netip"
	"strings"
)

// maxHops bounds how many hops of a forwarding chain are read: only the
// rightmost ones matter (the walk stops at the first untrusted address),
// and a client may send any number of made-up hops on the left.
const maxHops = 32

// Node is one hop of a forwarding chain. Addr is invalid when the hop is
// "unknown", an obfuscated identifier (RFC 7239 §6.3) or unreadable.
type Node struct {
	Addr netip.Addr
}

// ParseForwarded reads the "for" parameters of Forwarded header values
// (RFC 7239 §4), client first, at most the last 32 hops. Each element
// stands alone: an element that cannot be read becomes an unknown hop
// instead of spoiling the elements to its right.
func ParseForwarded(values []string) []Node {
	elems := lastElements(values, maxHops)
	out := make([]Node, 0, len(elems))
	for _, e := range elems {
		out = append(out, Node{Addr: forwardedFor(e)})
	}
	return out
}

// ParseXForwardedFor reads X-Forwarded-For header values (comma-separated
// addresses, client first; some proxies add a port or IPv6 brackets), at
// most the last 32 hops.
func ParseXForwardedFor(values []string) []Node {
	elems := lastElements(values, maxHops)
	out := make([]Node, 0, len(elems))
	for _, e := range elems {
		out = append(out, Node{Addr: parseNode(strings.TrimSpace(e))})
	}
	return out
}

// lastElements splits header values on commas outside quoted strings
// (repeated header lines form one list, RFC 9110 §5.3) and keeps the last
// n, in order, without holding more than n at a time.
func lastElements(values []string, n int) []string {
	ring := make([]string, n)
	count := 0
	for _, v := range values {
		start, quoted, escaped := 0, false, false
		for i := 0; i <= len(v); i++ {
			if i < len(v) {
				switch c := v[i]; {
				case escaped:
					escaped = false
					continue
				case quoted && c == '\\':
					escaped = true
					continue
				case c == '"':
					quoted = !quoted
					continue
				case c != ',' || quoted:
					continue
				}
			}
			ring[count%n] = v[start:i]
			count++
			start = i + 1
		}
	}
	if count <= n {
		return ring[:count]
	}
	k := count % n
	return append(ring[k:], ring[:k]...)
}

// forwardedFor returns the address of the one "for" pair of a
// forwarded-element ("for=192.0.2.60;proto=http;by=203.0.113.43").
func forwardedFor(elem string) netip.Addr {
	var found netip.Addr
	seen := false
	for _, pair := range splitUnquoted(elem, ';') {
		pair = strings.TrimSpace(pair)
		if pair == "" {
			continue
		}
		k, v, ok := strings.Cut(pair, "=")
		if !ok || !isToken(k) {
			return netip.Addr{}
		}
		if !strings.EqualFold(k, "for") {
			continue
		}
		if seen {
			return netip.Addr{} // two "for" in one element: which one?
		}
		seen = true
		val, ok := unquote(v)
		if !ok {
			return netip.Addr{}
		}
		found = parseNode(val)
	}
	return found
}

// splitUnquoted splits s on sep outside quoted strings.
func splitUnquoted(s string, sep byte) []string {
	var out []string
	start, quoted, escaped := 0, false, false
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case escaped:
			escaped = false
		case quoted && c == '\\':
			escaped = true
		case c == '"':
			quoted = !quoted
		case c == sep && !quoted:
			out = append(out, s[start:i])
			start = i + 1
		}
	}
	return append(out, s[start:])
}

// unquote reads a token or a quoted-string (RFC 9110 §5.6.4). Unquoted
// values are read leniently (some proxies write for=192.0.2.1:8080 or a
// bare IPv6 address without the quotes RFC 7239 asks for): parseNode
// decides what they are.
func unquote(v string) (string, bool) {
	if !strings.HasPrefix(v, `"`) {
		return v, v != "" && !strings.ContainsAny(v, "\" \t")
	}
	if len(v) < 2 || !strings.HasSuffix(v, `"`) {
		return "", false
	}
	var b strings.Builder
	inner := v[1 : len(v)-1]
	for i := 0; i < len(inner); i++ {
		c := inner[i]
		if c == '\\' {
			if i+1 == len(inner) {
				return "", false
			}
			i++
			c = inner[i]
		} else if c == '"' {
			return "", false
		}
		b.WriteByte(c)
	}
	return b.String(), true
}

// isToken reports whether s is a non-empty RFC 9110 token.
func isToken(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0 {
			continue
		}
		return false
	}
	return true
}

// parseNode reads a node: an IPv4 address, "[IPv6]", either with ":port",
// or a bare IPv6 address (written by some proxies). "unknown", obfuscated
// identifiers ("_hidden") and anything else are invalid.
func parseNode(s string) netip.Addr {
	if a, err := netip.ParseAddr(s); err == nil {
		return clean(a)
	}
	if strings.HasPrefix(s, "[") {
		end := strings.IndexByte(s, ']')
		if end < 0 {
			return netip.Addr{}
		}
		a, err := netip.ParseAddr(s[1:end])
		if err != nil || !a.Is6() || !validPort(s[end+1:]) {
			return netip.Addr{}
		}
		return clean(a)
	}
	host, port, ok := strings.Cut(s, ":")
	if !ok || !validPort(":"+port) {
		return netip.Addr{}
	}
	a, err := netip.ParseAddr(host)
	if err != nil || !a.Is4() {
		return netip.Addr{}
	}
	return a
}

// validPort accepts "", ":digits" (up to 5) or an obfuscated port ":_x".
func validPort(s string) bool {
	if s == "" {
		return true
	}
	if s[0] != ':' || len(s) < 2 || len(s) > 32 {
		return false
	}
	p := s[1:]
	if p[0] == '_' {
		return isToken(p)
	}
	if len(p) > 5 {
		return false
	}
	for i := 0; i < len(p); i++ {
		if p[i] < '0' || p[i] > '9' {
			return false
		}
	}
	return true
}

// clean drops an IPv6 zone and unmaps IPv4-mapped addresses, so one client
// has one key.
func clean(a netip.Addr) netip.Addr { return a.WithZone("").Unmap() }
