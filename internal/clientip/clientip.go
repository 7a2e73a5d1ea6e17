// Package clientip tells who the client of an HTTP request is, for rate
// limits and logs. It is the TCP peer, unless that peer is one of the
// configured trusted proxies: then the forwarding chain of the Forwarded
// (RFC 7239) or X-Forwarded-For header is followed from the right, past
// every trusted proxy, to the first address that is not one. Headers from
// any other peer are ignored, so a client cannot choose its own address.
//
// When a request carries both headers, the two chains must name the same
// client; if they do not (one of them is the client's invention, and which
// one cannot be told), the TCP peer is used. A hop written as "unknown",
// an obfuscated identifier or anything unreadable ends the walk: the last
// trusted proxy before it is the client as far as anyone can tell.
package clientip

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"strings"
)

// Resolver finds the client address of requests. The zero value and nil
// trust no proxy. It is safe for concurrent use.
type Resolver struct {
	trusted []netip.Prefix
}

// ErrPrefix is wrapped by every error about a trusted-proxy entry.
var ErrPrefix = errors.New("trusted proxy")

// ParsePrefix reads one trusted-proxy entry: a CIDR prefix (10.0.0.0/8,
// 2001:db8::/32) or a single address. Host bits set under the mask and
// prefixes that cover every address (0.0.0.0/0, ::/0) are refused: the
// first is usually a typing mistake, the second would let any client
// choose its address.
func ParsePrefix(s string) (netip.Prefix, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return netip.Prefix{}, fmt.Errorf("%w: empty entry", ErrPrefix)
	}
	if !strings.Contains(s, "/") {
		a, err := netip.ParseAddr(s)
		if err != nil || a.Zone() != "" {
			return netip.Prefix{}, fmt.Errorf("%w: %q is neither a CIDR prefix nor an IP address", ErrPrefix, s)
		}
		a = a.Unmap()
		return netip.PrefixFrom(a, a.BitLen()), nil
	}
	p, err := netip.ParsePrefix(s)
	if err != nil {
		return netip.Prefix{}, fmt.Errorf("%w: %q is not a CIDR prefix: %w", ErrPrefix, s, err)
	}
	if p.Masked() != p {
		return netip.Prefix{}, fmt.Errorf("%w: %q has host bits set (did you mean %s?)", ErrPrefix, s, p.Masked())
	}
	if p.Bits() == 0 {
		return netip.Prefix{}, fmt.Errorf("%w: %q would trust every peer, and let any client choose its address", ErrPrefix, s)
	}
	if p.Addr().Is4In6() && p.Bits() >= 96 {
		p = netip.PrefixFrom(p.Addr().Unmap(), p.Bits()-96)
	}
	return p, nil
}

// New returns a resolver that believes forwarding headers only from peers
// within the given entries (see ParsePrefix); none means the TCP peer is
// always the client.
func New(entries []string) (*Resolver, error) {
	r := &Resolver{}
	for i, e := range entries {
		p, err := ParsePrefix(e)
		if err != nil {
			return nil, fmt.Errorf("entry %d: %w", i, err)
		}
		r.trusted = append(r.trusted, p)
	}
	return r, nil
}

// Trusted reports whether a is a trusted proxy.
func (r *Resolver) Trusted(a netip.Addr) bool {
	if r == nil || !a.IsValid() {
		return false
	}
	a = a.Unmap()
	for _, p := range r.trusted {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// Proxies returns how many trusted-proxy entries the resolver has.
func (r *Resolver) Proxies() int {
	if r == nil {
		return 0
	}
	return len(r.trusted)
}

// Client is who sent a request.
type Client struct {
	// Addr is the client's address (invalid when even the TCP peer's
	// address cannot be read; then Key falls back to RemoteAddr).
	Addr netip.Addr
	// Peer is the TCP peer as the server saw it (r.RemoteAddr).
	Peer string
	// Forwarded is true when Addr comes from a forwarding header of a
	// trusted proxy rather than from the TCP connection.
	Forwarded bool
}

// IPv6KeyBits is the prefix length that names one IPv6 client in Key: a
// single subscriber or host is handed a whole /64 (RFC 6177, SLAAC), so
// every address in it is one client; keyed per /128 it could take a fresh
// address, and with it a fresh rate-limit bucket, for every request.
const IPv6KeyBits = 64

// Key is the string that identifies the client, for a rate-limit bucket:
// an IPv4 address as it is, an IPv6 address as its /64
// ("2001:db8:1:2::/64", IPv6KeyBits).
func (c Client) Key() string {
	if c.Addr.IsValid() {
		if c.Addr.Is6() {
			// Prefix cannot fail for a valid IPv6 address and 64 bits.
			p, _ := c.Addr.Prefix(IPv6KeyBits)
			return p.String()
		}
		return c.Addr.String()
	}
	return hostOf(c.Peer)
}

// hostOf strips the port of a RemoteAddr, when it has one.
func hostOf(remote string) string {
	if h, _, err := net.SplitHostPort(remote); err == nil {
		return h
	}
	return remote
}

// peerAddr reads the address of a RemoteAddr ("ip:port", or a bare ip).
func peerAddr(remote string) netip.Addr {
	a, err := netip.ParseAddr(hostOf(remote))
	if err != nil {
		return netip.Addr{}
	}
	return a.WithZone("").Unmap()
}

// Resolve finds the client of req (see the package comment).
func (r *Resolver) Resolve(req *http.Request) Client {
	peer := peerAddr(req.RemoteAddr)
	c := Client{Addr: peer, Peer: req.RemoteAddr}
	if !r.Trusted(peer) {
		return c
	}
	var found []netip.Addr
	if v := req.Header.Values("Forwarded"); len(v) > 0 {
		found = append(found, r.walk(ParseForwarded(v), peer))
	}
	if v := req.Header.Values("X-Forwarded-For"); len(v) > 0 {
		found = append(found, r.walk(ParseXForwardedFor(v), peer))
	}
	if len(found) == 0 || (len(found) == 2 && found[0] != found[1]) {
		return c
	}
	c.Addr, c.Forwarded = found[0], found[0] != peer
	return c
}

// walk follows a forwarding chain (client first, nearest proxy last) from
// the right: the first hop that is not a trusted proxy is the client.
func (r *Resolver) walk(chain []Node, peer netip.Addr) netip.Addr {
	last := peer
	for i := len(chain) - 1; i >= 0; i-- {
		n := chain[i]
		if !n.Addr.IsValid() {
			return last // unknown or unreadable: the proxy that wrote it is all we know
		}
		if !r.Trusted(n.Addr) {
			return n.Addr
		}
		last = n.Addr
	}
	return last
}

type contextKey struct{}

// Middleware resolves the client of every request once, before next: the
// Client is in the request's context (FromRequest), and when it comes from
// a forwarding header, r.RemoteAddr is replaced by the client's address, so
// that every log line and audit record downstream names the client, not
// the proxy (the proxy stays in Client.Peer).
func (r *Resolver) Middleware(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		c := r.Resolve(req)
		req = req.WithContext(context.WithValue(req.Context(), contextKey{}, c))
		if c.Forwarded {
			req.RemoteAddr = c.Addr.String()
		}
		next.ServeHTTP(w, req)
	})
}

// FromRequest returns the client that Middleware resolved, or, for a
// request that did not pass through it, the TCP peer.
func FromRequest(req *http.Request) Client {
	if c, ok := req.Context().Value(contextKey{}).(Client); ok {
		return c
	}
	return Client{Addr: peerAddr(req.RemoteAddr), Peer: req.RemoteAddr}
}
