package main

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/thiqa/thiqa/internal/clientip"
)

// TestVerifyTrustedProxies checks the rate limit behind the client
// resolution that `thiqa serve` puts in front of everything: spoofed
// forwarding headers from an untrusted peer change nothing, and behind a
// trusted proxy two clients get separate buckets.
func TestVerifyTrustedProxies(t *testing.T) {
	proxies, err := clientip.New([]string{"10.0.0.0/8"})
	if err != nil {
		t.Fatal(err)
	}
	now := time.Unix(1_800_000_000, 0)
	limit := newRateLimiter(1, 3, func() time.Time { return now })
	h := proxies.Middleware(limit.middleware(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusNoContent) })))
	send := func(peer, xff, fwd string) int {
		req := httptest.NewRequest(http.MethodPost, "/api/v1/verify", nil)
		req.RemoteAddr = peer
		if xff != "" {
			req.Header.Set("X-Forwarded-For", xff)
		}
		if fwd != "" {
			req.Header.Set("Forwarded", fwd)
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		return rec.Code
	}
	// An untrusted peer inventing a new address on every request still
	// has one bucket: the 4th request is refused.
	for i, spoof := range []string{"198.51.100.1", "198.51.100.2", "for=198.51.100.3", "198.51.100.4"} {
		xff, fwd := spoof, ""
		if i == 2 {
			xff, fwd = "", spoof
		}
		want := http.StatusNoContent
		if i == 3 {
			want = http.StatusTooManyRequests
		}
		if code := send("192.0.2.7:5555", xff, fwd); code != want {
			t.Fatalf("untrusted peer, spoofed %q: %d, want %d", spoof, code, want)
		}
	}
	// Behind the trusted proxy: client A uses up its burst, client B is
	// not affected, and neither is the proxy's own address.
	for i := range 4 {
		want := http.StatusNoContent
		if i == 3 {
			want = http.StatusTooManyRequests
		}
		if code := send("10.0.0.2:40000", "6.6.6.6, 198.51.100.10", ""); code != want {
			t.Fatalf("client A, request %d: %d, want %d", i+1, code, want)
		}
	}
	if code := send("10.0.0.2:40001", "", `for="198.51.100.11:5000"`); code != http.StatusNoContent {
		t.Fatalf("client B behind the same proxy shares A's bucket: %d", code)
	}
	if code := send("10.0.0.2:40002", "", ""); code != http.StatusNoContent {
		t.Fatalf("the proxy's own requests share a client's bucket: %d", code)
	}
}

// TestAccessLogNamesClient checks that the access log names the client
// behind a trusted proxy, with the proxy as "peer", and the TCP peer
// otherwise.
func TestAccessLogNamesClient(t *testing.T) {
	proxies, err := clientip.New([]string{"10.0.0.0/8"})
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	logger := slog.New(slog.NewJSONHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug}))
	h := proxies.Middleware(accessLog(logger, http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {})))
	for _, c := range []struct{ peer, xff, remote, proxy string }{
		{"10.0.0.2:40000", "198.51.100.10", "198.51.100.10", "10.0.0.2:40000"},
		{"192.0.2.7:5555", "198.51.100.10", "192.0.2.7:5555", ""},
	} {
		buf.Reset()
		req := httptest.NewRequest(http.MethodGet, "/verify", nil)
		req.RemoteAddr = c.peer
		req.Header.Set("X-Forwarded-For", c.xff)
		h.ServeHTTP(httptest.NewRecorder(), req)
		var line struct {
			Msg    string `json:"msg"`
			Remote string `json:"remote"`
			Peer   string `json:"peer"`
		}
		if err := json.Unmarshal(buf.Bytes(), &line); err != nil || line.Msg != "http request" || line.Remote != c.remote || line.Peer != c.proxy {
			t.Fatalf("peer %s: log line %s", c.peer, buf.String())
		}
	}
}
