package clientip

import (
	"net/http"
	"net/http/httptest"
	"net/netip"
	"testing"
)

// FuzzResolve feeds arbitrary Forwarded and X-Forwarded-For values to the
// parsers and the resolver behind a trusted proxy: nothing panics, chains
// stay bounded, and the client is always the peer or an address that one
// of the headers names.
func FuzzResolve(f *testing.F) {
	f.Add(`for=192.0.2.60;proto=http;by=203.0.113.43`, "203.0.113.195, 70.41.3.18")
	f.Add(`For="[2001:db8:cafe::17]:4711", for=unknown`, "[2001:db8::1]:80")
	f.Add(`for="\"\\", for=_hidden;for=1.2.3.4`, "unknown,,")
	f.Add(`for="198.51.100.1, for=6.6.6.6", for=10.1.1.1`, "10.2.2.2")
	r, err := New([]string{"10.0.0.0/8", "2001:db8:ffff::/48"})
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, fwd, xff string) {
		named := map[netip.Addr]bool{}
		for _, chain := range [][]Node{ParseForwarded([]string{fwd}), ParseXForwardedFor([]string{xff})} {
			if len(chain) > maxHops {
				t.Fatalf("%d hops kept", len(chain))
			}
			for _, n := range chain {
				if n.Addr.IsValid() {
					if n.Addr.Zone() != "" || n.Addr.Is4In6() {
						t.Fatalf("uncleaned address %v", n.Addr)
					}
					named[n.Addr] = true
				}
			}
		}
		req := httptest.NewRequest(http.MethodGet, "/", nil)
		req.RemoteAddr = "10.0.0.2:40000"
		req.Header.Set("Forwarded", fwd)
		req.Header.Set("X-Forwarded-For", xff)
		c := r.Resolve(req)
		if c.Addr != netip.MustParseAddr("10.0.0.2") && !named[c.Addr] {
			t.Fatalf("client %v is neither the peer nor a named hop", c.Addr)
		}
		req.RemoteAddr = "192.0.2.7:1"
		if c := r.Resolve(req); c.Key() != "192.0.2.7" {
			t.Fatalf("an untrusted peer's headers were believed: %+v", c)
		}
	})
}
