package verify

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/net/http/httpproxy"
)

// ErrAddressNotAllowed is the error of an online fetch refused because the
// address it would connect to is not public (loopback, private, link-local,
// unique-local, unspecified, multicast or reserved) and its host is not
// one the fetcher was told to allow.
var ErrAddressNotAllowed = errors.New("verify: address not allowed for online fetches")

// maxRedirects bounds the redirects one online fetch follows.
const maxRedirects = 3

// nonPublic are the IP ranges that are not reachable on the public
// Internet (IANA special-purpose registries) beyond what netip.Addr's
// predicates already tell: carrier-grade NAT (some clouds' metadata
// services live there), IETF protocol assignments, benchmarking,
// documentation, reserved, discard-only, and the IPv6 prefixes that embed
// an IPv4 address (NAT64, 6to4, Teredo) or are deprecated site-local.
var nonPublic = func() []netip.Prefix {
	var out []netip.Prefix
	for _, s := range []string{
		"0.0.0.0/8", "100.64.0.0/10", "192.0.0.0/24", "192.0.2.0/24", "198.18.0.0/15",
		"198.51.100.0/24", "203.0.113.0/24", "240.0.0.0/4",
		"64:ff9b::/96", "64:ff9b:1::/48", "100::/64", "2001::/32", "2001:db8::/32", "2002::/16", "fec0::/10",
	} {
		out = append(out, netip.MustParsePrefix(s))
	}
	return out
}()

// PublicAddress reports whether a is a public unicast address, one an
// online fetch of a public verification service may connect to.
func PublicAddress(a netip.Addr) bool {
	a = a.Unmap()
	if !a.IsValid() || !a.IsGlobalUnicast() || a.IsPrivate() || a.IsLoopback() || a.IsLinkLocalUnicast() ||
		a.IsUnspecified() || a.IsMulticast() || a == netip.AddrFrom4([4]byte{255, 255, 255, 255}) {
		return false
	}
	for _, p := range nonPublic {
		if p.Contains(a) {
			return false
		}
	}
	return true
}

// ParseFetchHost checks one allowed host of online fetches: "host:port"
// or "host" (which allows ports 80 and 443), where host is a DNS name or
// an IP address (IPv6 in brackets with a port). It returns the canonical
// host:port entries it stands for, lower case.
func ParseFetchHost(s string) ([]string, error) {
	if s == "" || strings.TrimSpace(s) != s || strings.ContainsAny(s, "/?#@ \t") {
		return nil, fmt.Errorf("want host or host:port (no scheme, path or spaces), got %q", s)
	}
	host, port := s, ""
	if h, p, err := net.SplitHostPort(s); err == nil {
		host, port = h, p
		n, err := strconv.Atoi(p)
		if err != nil || n < 1 || n > 65535 || strconv.Itoa(n) != p {
			return nil, fmt.Errorf("want a port from 1 to 65535 in %q", s)
		}
	} else if strings.Contains(s, ":") {
		if _, err := netip.ParseAddr(s); err != nil {
			return nil, fmt.Errorf("want host or host:port, got %q", s)
		}
	}
	if !validHost(host) {
		return nil, fmt.Errorf("want a DNS name or an IP address as the host, got %q", host)
	}
	host = strings.ToLower(host)
	if port != "" {
		return []string{net.JoinHostPort(host, port)}, nil
	}
	return []string{net.JoinHostPort(host, "80"), net.JoinHostPort(host, "443")}, nil
}

// validHost reports whether h is an IP address or a DNS name of letters,
// digits, hyphens and dots.
func validHost(h string) bool {
	if _, err := netip.ParseAddr(h); err == nil {
		return true
	}
	if h == "" || len(h) > 253 {
		return false
	}
	for _, label := range strings.Split(strings.TrimSuffix(h, "."), ".") {
		if label == "" || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
			return false
		}
		for _, r := range label {
			if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_') {
				return false
			}
		}
	}
	return true
}

// HostOfURL returns the canonical host:port of an absolute http(s) URL
// (the scheme's default port when it names none), as ParseFetchHost does.
func HostOfURL(raw string) (string, error) {
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return "", fmt.Errorf("want an absolute http(s) URL, got %q", raw)
	}
	port := u.Port()
	if port == "" {
		port = map[string]string{"http": "80", "https": "443"}[u.Scheme]
	}
	return net.JoinHostPort(strings.ToLower(u.Hostname()), port), nil
}

// GuardedClient returns an HTTP client for the online fetches of a public
// verification service: it connects only to public addresses, checked
// at every connection on the address actually dialled (after DNS, so a
// name that resolves to an internal address and every redirect are
// covered), except to the allowed host:port entries (ParseFetchHost's
// form, e.g. this deployment's own publicBaseURL host), which may resolve
// anywhere. It follows at most 3 redirects, to http or https only, and
// gives up after timeout.
//
// It uses the proxy the environment names (HTTP_PROXY, HTTPS_PROXY,
// NO_PROXY), as Go's default client does: networks whose egress goes
// through a proxy keep working. The proxy itself may be on any address; a
// destination sent to it must be an allowed host or, when its name
// resolves here, resolve to public addresses only (a name this host cannot
// resolve is left to the proxy and its own egress rules).
func GuardedClient(timeout time.Duration, allowed []string) *http.Client {
	lookup := func(ctx context.Context, host string) ([]netip.Addr, error) {
		return net.DefaultResolver.LookupNetIP(ctx, "ip", host)
	}
	return guardedClient(timeout, allowed, httpproxy.FromEnvironment(), lookup)
}

// lookupFunc resolves a host name to its addresses.
type lookupFunc func(ctx context.Context, host string) ([]netip.Addr, error)

// guardedClient is GuardedClient with the proxy settings and the lookup of
// the destinations sent through the proxy given.
func guardedClient(timeout time.Duration, allowed []string, proxy *httpproxy.Config, lookup lookupFunc) *http.Client {
	allow := map[string]bool{}
	for _, a := range allowed {
		allow[strings.ToLower(a)] = true
	}
	proxyHosts := map[string]bool{}
	for _, p := range []string{proxy.HTTPProxy, proxy.HTTPSProxy} {
		if hp, ok := proxyHostPort(p); ok {
			proxyHosts[hp] = true
		}
	}
	proxyFor := proxy.ProxyFunc()
	plain := &net.Dialer{Timeout: timeout}
	guarded := &net.Dialer{Timeout: timeout, Control: func(_, address string, _ syscall.RawConn) error {
		ap, err := netip.ParseAddrPort(address)
		if err != nil || !PublicAddress(ap.Addr()) {
			return ErrAddressNotAllowed
		}
		return nil
	}}
	tr := http.DefaultTransport.(*http.Transport).Clone()

	tr.Proxy = func(req *http.Request) (*url.URL, error) {
		p, err := proxyFor(req.URL)
		if err != nil {
			return nil, err
		}
		if p == nil {
			// A direct request: the dialler lets a proxy's address through
			// unchecked, so a URL naming the proxy itself (not sent
			// through it: NO_PROXY, or the other scheme's proxy) would
			// reach it; refuse unless it is an allowed host.
			if hp, err := HostOfURL(req.URL.String()); err == nil && proxyHosts[hp] && !allow[hp] {
				return nil, ErrAddressNotAllowed
			}
			return nil, nil
		}
		if err := destinationAllowed(req.Context(), req.URL, allow, lookup); err != nil {
			return nil, err
		}
		return p, nil
	}
	tr.DialContext = func(ctx context.Context, network, addr string) (net.Conn, error) {
		host, port, err := net.SplitHostPort(addr)
		if hp := net.JoinHostPort(strings.ToLower(host), port); err == nil && (allow[hp] || proxyHosts[hp]) {
			return plain.DialContext(ctx, network, addr)
		}
		return guarded.DialContext(ctx, network, addr)
	}
	return &http.Client{Timeout: timeout, Transport: tr, CheckRedirect: checkRedirect}
}

// proxyHostPort returns the host:port of a proxy setting ("host:port",
// "http://host:port", "socks5://host"), the scheme's port when it names
// none.
func proxyHostPort(setting string) (string, bool) {
	if setting == "" {
		return "", false
	}
	if !strings.Contains(setting, "://") {
		setting = "http://" + setting
	}
	u, err := url.Parse(setting)
	if err != nil || u.Hostname() == "" {
		return "", false
	}
	port := u.Port()
	if port == "" {
		port = map[string]string{"http": "80", "https": "443", "socks5": "1080"}[u.Scheme]
	}
	return net.JoinHostPort(strings.ToLower(u.Hostname()), port), true
}

// destinationAllowed checks a destination that goes through a proxy, where
// the dialled address is the proxy's: an allowed host, a public IP
// address, or a name that resolves here to public addresses only (or does
// not resolve here).
func destinationAllowed(ctx context.Context, u *url.URL, allow map[string]bool, lookup lookupFunc) error {
	hp, err := HostOfURL(u.String())
	if err != nil {
		return err
	}
	if allow[hp] {
		return nil
	}
	host := u.Hostname()
	if a, err := netip.ParseAddr(host); err == nil {
		if !PublicAddress(a) {
			return ErrAddressNotAllowed
		}
		return nil
	}
	addrs, err := lookup(ctx, host)
	if err != nil {
		return nil // the proxy resolves it, under its own rules
	}
	for _, a := range addrs {
		if !PublicAddress(a) {
			return ErrAddressNotAllowed
		}
	}
	return nil
}

// checkRedirect bounds redirects and keeps them to http and https.
func checkRedirect(req *http.Request, via []*http.Request) error {
	if len(via) > maxRedirects {
		return fmt.Errorf("verify: more than %d redirects", maxRedirects)
	}
	if req.URL.Scheme != "http" && req.URL.Scheme != "https" {
		return fmt.Errorf("verify: redirect to a %q URL", req.URL.Scheme)
	}
	return nil
}
