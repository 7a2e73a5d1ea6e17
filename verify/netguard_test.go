package verify

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/net/http/httpproxy"
)

func TestPublicAddress(t *testing.T) {
	for _, tc := range []struct {
		addr   string
		public bool
	}{
		{"8.8.8.8", true}, {"2001:4860:4860::8888", true}, {"193.0.6.139", true},
		{"127.0.0.1", false}, {"127.1.2.3", false}, {"10.0.0.5", false}, {"172.16.0.1", false}, {"192.168.1.1", false},
		{"169.254.169.254", false}, {"100.100.100.200", false}, {"0.0.0.0", false}, {"0.1.2.3", false},
		{"255.255.255.255", false}, {"224.0.0.1", false}, {"240.0.0.1", false}, {"198.18.0.1", false},
		{"::1", false}, {"::", false}, {"fd00::1", false}, {"fc00::1", false}, {"fe80::1", false}, {"fec0::1", false},
		{"ff02::1", false}, {"::ffff:127.0.0.1", false}, {"::ffff:10.0.0.1", false}, {"64:ff9b::7f00:1", false},
		{"2002:7f00:1::1", false}, {"2001:db8::1", false}, {"2001::1", false},
	} {
		if got := PublicAddress(netip.MustParseAddr(tc.addr)); got != tc.public {
			t.Errorf("PublicAddress(%s) = %v, want %v", tc.addr, got, tc.public)
		}
	}
}

func TestParseFetchHost(t *testing.T) {
	for in, want := range map[string]string{
		"ocsp.example.gov:8080": "ocsp.example.gov:8080",
		"OCSP.Example.gov":      "ocsp.example.gov:80 ocsp.example.gov:443",
		"127.0.0.1:8080":        "127.0.0.1:8080",
		"[::1]:8080":            "[::1]:8080",
		"::1":                   "[::1]:80 [::1]:443",
	} {
		got, err := ParseFetchHost(in)
		if err != nil || strings.Join(got, " ") != want {
			t.Errorf("ParseFetchHost(%q) = %v, %v; want %s", in, got, err, want)
		}
	}
	for _, bad := range []string{"", " a.example", "http://a.example", "a.example/crl", "a.example:0", "a.example:99999",
		"a.example:http", "user@a.example", "-a.example", "a..example", "a.example:08", "a_b!.example"} {
		if _, err := ParseFetchHost(bad); err == nil {
			t.Errorf("ParseFetchHost(%q) accepted", bad)
		}
	}
}

// countingServer counts its requests and answers with h.
func countingServer(t *testing.T, h http.HandlerFunc) (*httptest.Server, *atomic.Int32) {
	var hits atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		h(w, r)
	}))
	t.Cleanup(srv.Close)
	return srv, &hits
}

func hostOf(t *testing.T, u string) string {
	h, err := HostOfURL(u)
	if err != nil {
		t.Fatal(err)
	}
	return h
}

func TestGuardedClient(t *testing.T) {
	ok := func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte("ok")) }
	internal, internalHits := countingServer(t, ok)
	c := GuardedClient(5*time.Second, nil)
	_, port, _ := net.SplitHostPort(internal.Listener.Addr().String())

	// Loopback by address and by a name that resolves to it.
	for _, u := range []string{internal.URL, "http://localhost:" + port + "/"} {
		if _, err := c.Get(u); !errors.Is(err, ErrAddressNotAllowed) {
			t.Errorf("GET %s: %v, want ErrAddressNotAllowed", u, err)
		}
	}
	// An allowed host, which redirects to one that is not.
	own, _ := countingServer(t, func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, internal.URL+"/secret", http.StatusFound)
	})
	c = GuardedClient(5*time.Second, []string{hostOf(t, own.URL)})
	if _, err := c.Get(own.URL); !errors.Is(err, ErrAddressNotAllowed) {
		t.Errorf("redirect to an internal address: %v, want ErrAddressNotAllowed", err)
	}
	if n := internalHits.Load(); n != 0 {
		t.Errorf("the internal server got %d requests", n)
	}
	// The allowed host itself is reachable.
	c = GuardedClient(5*time.Second, []string{hostOf(t, internal.URL)})
	if resp, err := c.Get(internal.URL); err != nil {
		t.Errorf("allowed host: %v", err)
	} else {
		resp.Body.Close()
	}
	// Redirects are bounded.
	var loop *httptest.Server
	loop, loopHits := countingServer(t, func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, loop.URL+"/again", http.StatusFound)
	})
	c = GuardedClient(5*time.Second, []string{hostOf(t, loop.URL)})
	if _, err := c.Get(loop.URL); err == nil {
		t.Error("endless redirects followed")
	}
	if n := loopHits.Load(); n != maxRedirects+1 {
		t.Errorf("redirect loop: %d requests, want %d", n, maxRedirects+1)
	}
}

// TestGuardedClientProxy: with a proxy in the environment's settings the
// fetches go through it (the proxy may be internal), and destinations
// that are internal by address or by name are refused before they reach
// it.
func TestGuardedClientProxy(t *testing.T) {
	var seen []string
	proxy, hits := countingServer(t, func(w http.ResponseWriter, r *http.Request) {
		seen = append(seen, r.URL.String())
		_, _ = w.Write([]byte("via proxy"))
	})
	cfg := &httpproxy.Config{HTTPProxy: proxy.URL}
	// A host whose DNS is the proxy's: it resolves nothing itself.
	noDNS := func(context.Context, string) ([]netip.Addr, error) { return nil, errors.New("no DNS here") }
	c := guardedClient(5*time.Second, nil, cfg, noDNS)
	resp, err := c.Get("http://ocsp.example.net/status")
	if err != nil {
		t.Fatalf("public name through the proxy: %v", err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if string(body) != "via proxy" || len(seen) != 1 || seen[0] != "http://ocsp.example.net/status" {
		t.Fatalf("the proxy saw %q and answered %q", seen, body)
	}
	for _, u := range []string{"http://10.1.2.3/x", "http://169.254.169.254/latest/meta-data", "http://[fd00::1]/x"} {
		if _, err := c.Get(u); !errors.Is(err, ErrAddressNotAllowed) {
			t.Errorf("GET %s through the proxy: %v, want ErrAddressNotAllowed", u, err)
		}
	}
	if n := hits.Load(); n != 1 {
		t.Errorf("the proxy got %d requests, want 1", n)
	}
	// A name that resolves here to an internal address is refused too.
	lookup := func(context.Context, string) ([]netip.Addr, error) {
		return []netip.Addr{netip.MustParseAddr("193.0.6.139"), netip.MustParseAddr("10.9.8.7")}, nil
	}
	c = guardedClient(5*time.Second, nil, cfg, lookup)
	if _, err := c.Get("http://intranet.example.net/x"); !errors.Is(err, ErrAddressNotAllowed) {
		t.Errorf("a name resolving to 10.9.8.7: %v, want ErrAddressNotAllowed", err)
	}
	// The proxy's own address, asked directly (its host is in NO_PROXY),
	// is refused: the proxy is reachable only as the proxy.
	direct := &httpproxy.Config{HTTPProxy: proxy.URL, NoProxy: "127.0.0.1"}
	if _, err := guardedClient(5*time.Second, nil, direct, noDNS).Get(proxy.URL + "/admin"); !errors.Is(err, ErrAddressNotAllowed) {
		t.Errorf("GET the proxy itself, directly: %v, want ErrAddressNotAllowed", err)
	}
	if n := hits.Load(); n != 1 {
		t.Errorf("the proxy got %d requests, want 1", n)
	}
	// An allowed host goes through the proxy whatever it resolves to.
	c = guardedClient(5*time.Second, []string{"intranet.example.net:80"}, cfg, lookup)
	if resp, err := c.Get("http://intranet.example.net/x"); err != nil {
		t.Errorf("allowed host through the proxy: %v", err)
	} else {
		resp.Body.Close()
	}
}
