package auth

import (
	"net"
	"net/http"
)

// Requester names whoever sent a request to a public endpoint (the TSA),
// for its records: "method:subject" of the authenticated caller when the
// request carries a bearer token or a client certificate that verifies,
// otherwise "addr:" and the remote address (with " (credentials
// refused)" when they did not verify). a may be nil: addresses only.
func Requester(a *Authenticator) func(*http.Request) string {
	return func(r *http.Request) string {
		host, _, err := net.SplitHostPort(r.RemoteAddr)
		if err != nil {
			host = r.RemoteAddr
		}
		addr := "addr:" + host
		if a == nil || (r.Header.Get("Authorization") == "" && (r.TLS == nil || len(r.TLS.PeerCertificates) == 0)) {
			return addr
		}
		pr, err := a.Authenticate(r)
		if err != nil {
			return addr + " (credentials refused)"
		}
		return pr.Method + ":" + pr.Subject
	}
}
