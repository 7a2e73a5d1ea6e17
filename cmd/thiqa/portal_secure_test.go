package main

import "testing"

// TestPortalSecure: behind a load balancer that ends TLS the server
// itself speaks plain HTTP, yet browsers use https (publicBaseURL): the
// session cookie must still be Secure and __Host-, or a browser led to
// http://the-host/ hands it to anyone on the path.
func TestPortalSecure(t *testing.T) {
	for _, c := range []struct {
		tls  bool
		base string
		want bool
	}{
		{true, "http://127.0.0.1:8443", true},
		{false, "https://thiqa.example.om", true},
		{false, "HTTPS://thiqa.example.om", true},
		{false, "http://127.0.0.1:8080", false},
	} {
		if got := portalSecure(c.tls, c.base); got != c.want {
			t.Errorf("portalSecure(%t, %q) = %t, want %t", c.tls, c.base, got, c.want)
		}
	}
}
