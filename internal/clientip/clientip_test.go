package clientip

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"testing"
)

func TestParsePrefix(t *testing.T) {
	for in, want := range map[string]string{
		"10.0.0.0/8":              "10.0.0.0/8",
		" 192.0.2.7 ":             "192.0.2.7/32",
		"2001:db8::/32":           "2001:db8::/32",
		"2001:db8::1":             "2001:db8::1/128",
		"::ffff:10.0.0.0/104":     "10.0.0.0/8",
		"::ffff:192.0.2.7":        "192.0.2.7/32",
		"fd00::/8":                "fd00::/8",
		"127.0.0.1/32":            "127.0.0.1/32",
		"172.16.0.0/12":           "172.16.0.0/12",
		"2001:db8:0:0:0:0:0:0/64": "2001:db8::/64",
	} {
		p, err := ParsePrefix(in)
		if err != nil || p.String() != want {
			t.Errorf("ParsePrefix(%q) = %v, %v; want %s", in, p, err, want)
		}
	}
	for _, bad := range []string{"", " ", "10.0.0.1/8", "0.0.0.0/0", "::/0", "10.0.0.0/33", "example.com", "fe80::1%eth0", "10.0.0.0/", "/8", "10.0.0.0/8/8"} {
		if _, err := ParsePrefix(bad); !errors.Is(err, ErrPrefix) {
			t.Errorf("ParsePrefix(%q): %v, want ErrPrefix", bad, err)
		}
	}
	if _, err := New([]string{"10.0.0.0/8", "nope"}); !errors.Is(err, ErrPrefix) {
		t.Errorf("New with a bad entry: %v", err)
	}
}

func TestParseHeaders(t *testing.T) {
	addrs := func(ns []Node) []string {
		var out []string
		for _, n := range ns {
			if n.Addr.IsValid() {
				out = append(out, n.Addr.String())
			} else {
				out = append(out, "?")
			}
		}
		return out
	}
	eq := func(a, b []string) bool {
		if len(a) != len(b) {
			return false
		}
		for i := range a {
			if a[i] != b[i] {
				return false
			}
		}
		return true
	}
	for _, c := range []struct {
		values []string
		want   []string
	}{
		{[]string{`for=192.0.2.60;proto=http;by=203.0.113.43`}, []string{"192.0.2.60"}},
		{[]string{`For="[2001:db8:cafe::17]:4711"`}, []string{"2001:db8:cafe::17"}},
		{[]string{`for=192.0.2.43, for=198.51.100.17`}, []string{"192.0.2.43", "198.51.100.17"}},
		{[]string{`for=192.0.2.43`, `for=198.51.100.17;by=x`}, []string{"192.0.2.43", "198.51.100.17"}},
		{[]string{`for=unknown, for=_hidden, for="_x:_y", for=192.0.2.1:8080`}, []string{"?", "?", "?", "192.0.2.1"}},
		{[]string{`for="198.51.100.1, for=6.6.6.6", for=192.0.2.2`}, []string{"?", "192.0.2.2"}},
		{[]string{`garbage;;; ,for=192.0.2.3;for=192.0.2.4, for=192.0.2.5`}, []string{"?", "?", "192.0.2.5"}},
		{[]string{`proto=https`}, []string{"?"}},
		{[]string{`for="::ffff:192.0.2.9"`}, []string{"192.0.2.9"}},
		{[]string{`for="unterminated`}, []string{"?"}},
		{[]string{`for=2001:db8::1`}, []string{"2001:db8::1"}},
	} {
		if got := addrs(ParseForwarded(c.values)); !eq(got, c.want) {
			t.Errorf("ParseForwarded(%q) = %v, want %v", c.values, got, c.want)
		}
	}
	for _, c := range []struct {
		values []string
		want   []string
	}{
		{[]string{"203.0.113.195, 70.41.3.18, 150.172.238.178"}, []string{"203.0.113.195", "70.41.3.18", "150.172.238.178"}},
		{[]string{"203.0.113.195:41237", "[2001:db8::1]:80, 2001:db8::2"}, []string{"203.0.113.195", "2001:db8::1", "2001:db8::2"}},
		{[]string{"unknown, ,nonsense"}, []string{"?", "?", "?"}},
		{[]string{"fe80::1%eth0"}, []string{"fe80::1"}},
	} {
		if got := addrs(ParseXForwardedFor(c.values)); !eq(got, c.want) {
			t.Errorf("ParseXForwardedFor(%q) = %v, want %v", c.values, got, c.want)
		}
	}
	// Only the last 32 hops are kept, in order.
	long := ""
	for i := range 100 {
		if i > 0 {
			long += ","
		}
		long += netip.AddrFrom4([4]byte{10, 0, 0, byte(i)}).String()
	}
	ns := ParseXForwardedFor([]string{long, "192.0.2.1"})
	if len(ns) != maxHops || ns[0].Addr.String() != "10.0.0.69" || ns[len(ns)-1].Addr.String() != "192.0.2.1" {
		t.Errorf("long chain: %d hops, %v … %v", len(ns), ns[0].Addr, ns[len(ns)-1].Addr)
	}
}

func TestResolve(t *testing.T) {
	r, err := New([]string{"10.0.0.0/8", "2001:db8:ffff::/48"})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name      string
		peer      string
		xff, fwd  string
		want      string
		forwarded bool
	}{
		{"no headers", "192.0.2.7:5555", "", "", "192.0.2.7", false},
		{"spoofed XFF from an untrusted peer", "192.0.2.7:5555", "198.51.100.9", "", "192.0.2.7", false},
		{"spoofed Forwarded from an untrusted peer", "192.0.2.7:5555", "", "for=198.51.100.9", "192.0.2.7", false},
		{"trusted proxy, XFF", "10.0.0.2:40000", "198.51.100.9", "", "198.51.100.9", true},
		{"trusted proxy, Forwarded", "10.0.0.2:40000", "", `for="198.51.100.9:1234"`, "198.51.100.9", true},
		{"client's own spoof is left of the real hop", "10.0.0.2:40000", "6.6.6.6, 198.51.100.9", "", "198.51.100.9", true},
		{"two trusted proxies", "10.0.0.2:40000", "198.51.100.9, 10.9.9.9", "", "198.51.100.9", true},
		{"only trusted hops: the leftmost", "10.0.0.2:40000", "10.1.1.1, 10.2.2.2", "", "10.1.1.1", true},
		{"unknown hop: the proxy behind it", "10.0.0.2:40000", "", "for=198.51.100.9, for=unknown, for=10.3.3.3", "10.3.3.3", true},
		{"unknown right away: the peer", "10.0.0.2:40000", "", "for=unknown", "10.0.0.2", false},
		{"both headers agree", "10.0.0.2:40000", "198.51.100.9", "for=198.51.100.9", "198.51.100.9", true},
		{"both headers disagree: the peer", "10.0.0.2:40000", "198.51.100.9", "for=6.6.6.6", "10.0.0.2", false},
		{"IPv6 proxy and client", "[2001:db8:ffff::5]:443", "2001:db8::77", "", "2001:db8::77", true},
		{"IPv4-mapped peer", "[::ffff:10.0.0.2]:40000", "198.51.100.9", "", "198.51.100.9", true},
		{"unreadable peer", "@unix", "198.51.100.9", "", "", false},
	} {
		t.Run(c.name, func(t *testing.T) {
			req := httptest.NewRequest(http.MethodGet, "/", nil)
			req.RemoteAddr = c.peer
			if c.xff != "" {
				req.Header.Set("X-Forwarded-For", c.xff)
			}
			if c.fwd != "" {
				req.Header.Set("Forwarded", c.fwd)
			}
			got := r.Resolve(req)
			s := ""
			if got.Addr.IsValid() {
				s = got.Addr.String()
			}
			if s != c.want || got.Forwarded != c.forwarded || got.Peer != c.peer {
				t.Fatalf("Resolve = %+v, want %s (forwarded %v)", got, c.want, c.forwarded)
			}
		})
	}
	// Without trusted proxies, headers are never believed.
	var none *Resolver
	req := httptest.NewRequest(http.MethodGet, "/", nil)
	req.RemoteAddr = "10.0.0.2:1"
	req.Header.Set("X-Forwarded-For", "198.51.100.9")
	if c := none.Resolve(req); c.Key() != "10.0.0.2" || c.Forwarded {
		t.Fatalf("nil resolver: %+v", c)
	}
}

func TestMiddleware(t *testing.T) {
	r, _ := New([]string{"10.0.0.0/8"})
	var seen Client
	var remote string
	h := r.Middleware(http.HandlerFunc(func(_ http.ResponseWriter, req *http.Request) {
		seen, remote = FromRequest(req), req.RemoteAddr
	}))
	req := httptest.NewRequest(http.MethodGet, "/", nil)
	req.RemoteAddr = "10.0.0.2:40000"
	req.Header.Set("X-Forwarded-For", "198.51.100.9")
	h.ServeHTTP(httptest.NewRecorder(), req)
	if seen.Key() != "198.51.100.9" || seen.Peer != "10.0.0.2:40000" || remote != "198.51.100.9" {
		t.Fatalf("behind a trusted proxy: %+v, RemoteAddr %q", seen, remote)
	}
	req = httptest.NewRequest(http.MethodGet, "/", nil)
	req.RemoteAddr = "192.0.2.7:5555"
	req.Header.Set("X-Forwarded-For", "198.51.100.9")
	h.ServeHTTP(httptest.NewRecorder(), req)
	if seen.Key() != "192.0.2.7" || seen.Forwarded || remote != "192.0.2.7:5555" {
		t.Fatalf("untrusted peer: %+v, RemoteAddr %q", seen, remote)
	}
	// Outside the middleware: the TCP peer.
	if c := FromRequest(req); c.Key() != "192.0.2.7" {
		t.Fatalf("FromRequest without the middleware: %+v", c)
	}
}

// TestKeyIPv6Prefix: keyed per /128, one IPv6 host (which holds a whole
// /64) took a fresh rate-limit bucket for every request by changing its
// address. Every address of a /64 is one key; IPv4, and IPv4 mapped into
// IPv6, are keyed by the address.
func TestKeyIPv6Prefix(t *testing.T) {
	key := func(remote string) string {
		req := httptest.NewRequest(http.MethodGet, "/", nil)
		req.RemoteAddr = remote
		return FromRequest(req).Key()
	}
	a, b := key("[2001:db8:1:2::1]:443"), key("[2001:db8:1:2:ffff:ffff:ffff:fffe]:443")
	if a != "2001:db8:1:2::/64" || a != b {
		t.Fatalf("one /64, two keys: %q %q", a, b)
	}
	if c := key("[2001:db8:1:3::1]:443"); c == a {
		t.Fatalf("another /64, same key %q", c)
	}
	if k := key("[::ffff:192.0.2.7]:80"); k != "192.0.2.7" {
		t.Fatalf("IPv4-mapped: %q", k)
	}
	if k := key("192.0.2.7:80"); k != "192.0.2.7" {
		t.Fatalf("IPv4: %q", k)
	}
}
