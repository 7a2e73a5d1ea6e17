package ratelimit

import (
	"net/http"
	"net/http/httptest"
	"slices"
	"testing"
	"time"

	"github.com/thiqa/thiqa/internal/clientip"
)

// TestLimiter: the burst, the refill at the rate, one bucket per client,
// and the 429 problem with Retry-After.
func TestLimiter(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	l := New(2, 3, func() time.Time { return now })
	for i := range 3 {
		if ok, _ := l.Allow("a"); !ok {
			t.Fatalf("request %d within the burst refused", i+1)
		}
	}
	ok, wait := l.Allow("a")
	if ok || wait <= 0 || wait > 500*time.Millisecond {
		t.Fatalf("4th request: allowed %v, wait %s; want refused, wait ≤ 0.5s", ok, wait)
	}
	if ok, _ := l.Allow("b"); !ok {
		t.Fatal("another client IP shares the first one's bucket")
	}
	now = now.Add(500 * time.Millisecond) // one token back at 2/s
	if ok, _ := l.Allow("a"); !ok {
		t.Fatal("no token after 0.5 s at 2/s")
	}
	if ok, _ := l.Allow("a"); ok {
		t.Fatal("two tokens after 0.5 s at 2/s")
	}
	now = now.Add(time.Hour) // refills to the burst, not beyond
	for i := range 4 {
		ok, _ := l.Allow("a")
		if ok != (i < 3) {
			t.Fatalf("after an hour, request %d: allowed %v", i+1, ok)
		}
	}

	h := l.Middleware(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusNoContent) }))
	var rec *httptest.ResponseRecorder
	for range 4 {
		req := httptest.NewRequest(http.MethodPost, "/api/v1/verify", nil)
		req.RemoteAddr = "192.0.2.7:5555"
		rec = httptest.NewRecorder()
		h.ServeHTTP(rec, req)
	}
	if rec.Code != http.StatusTooManyRequests || rec.Header().Get("Content-Type") != "application/problem+json" || rec.Header().Get("Retry-After") == "" {
		t.Fatalf("over the limit: %d %v %s", rec.Code, rec.Header(), rec.Body)
	}
}

// TestLimiterBehindTrustedProxies checks the rate limit behind the client
// resolution that `thiqa serve` puts in front of everything: spoofed
// forwarding headers from an untrusted peer change nothing, and behind a
// trusted proxy two clients get separate buckets.
func TestLimiterBehindTrustedProxies(t *testing.T) {
	proxies, err := clientip.New([]string{"10.0.0.0/8"})
	if err != nil {
		t.Fatal(err)
	}
	now := time.Unix(1_800_000_000, 0)
	limit := New(1, 3, func() time.Time { return now })
	h := proxies.Middleware(limit.Middleware(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusNoContent) })))
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

// TestTakeStreak: Take counts the refusals in a row, so that a caller
// records the first of a streak only, and a request let through ends it.
func TestTakeStreak(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	l := New(1, 1, func() time.Time { return now })
	if d := l.Take("a"); !d.Allowed || d.Streak != 0 {
		t.Fatalf("first request: %+v", d)
	}
	for i := 1; i <= 3; i++ {
		if d := l.Take("a"); d.Allowed || d.Streak != i || d.Wait <= 0 {
			t.Fatalf("refusal %d: %+v", i, d)
		}
	}
	if d := l.Take("b"); !d.Allowed || d.Streak != 0 {
		t.Fatalf("another key: %+v", d)
	}
	now = now.Add(time.Second)
	if d := l.Take("a"); !d.Allowed {
		t.Fatalf("after the refill: %+v", d)
	}
	if d := l.Take("a"); d.Allowed || d.Streak != 1 {
		t.Fatalf("a new streak starts at 1: %+v", d)
	}
	if got := RetryAfter(1500 * time.Millisecond); got != "2" {
		t.Fatalf("RetryAfter(1.5s) = %s", got)
	}
	if got := RetryAfter(0); got != "1" {
		t.Fatalf("RetryAfter(0) = %s", got)
	}
}

// TestRecord: within the burst every refusal is recorded; past it the
// first of a run is (past: true), the rest are not; ResetStreak makes the
// next one the first again.
func TestRecord(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	l := New(0.1, 2, func() time.Time { return now })
	var got []string
	for range 5 {
		record, past := l.Record("a")
		got = append(got, map[bool]string{true: "r", false: "-"}[record]+map[bool]string{true: "p", false: ""}[past])
	}
	if want := []string{"r", "r", "rp", "-p", "-p"}; !slices.Equal(got, want) {
		t.Fatalf("Record: %v, want %v", got, want)
	}
	l.ResetStreak("a")
	if record, past := l.Record("a"); !record || !past {
		t.Fatalf("after ResetStreak: record %v past %v, want the run's first", record, past)
	}
}
