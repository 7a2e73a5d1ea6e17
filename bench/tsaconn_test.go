package bench

import (
	"bufio"
	"bytes"
	"context"
	"crypto/x509"
	"fmt"
	"net/http"
	"net/http/httptest"
	neturl "net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/thiqa/thiqa/timestamp"
	"github.com/thiqa/thiqa/timestamp/tsp"
)

// TestBenchConn drives the load generator's own HTTP/1.1 connection
// against the real handler of an in-process Authority: granted replies
// pass, refusals, HTTP errors and damaged replies fail, and the connection
// recovers after the server closes it.
func TestBenchConn(t *testing.T) {
	key, cert, caCert := benchUnit(t)
	serials, _ := timestamp.NewBlockAllocator(memBlocks(), "bench", 0)
	a, err := timestamp.New(timestamp.Config{}, timestamp.Options{
		Certificate: cert, Chain: []*x509.Certificate{caCert}, Signer: key, Serials: serials,
		Recorder: nopRecorder{}, Clock: timestamp.NewStaticChecker(true),
	})
	if err != nil {
		t.Fatal(err)
	}
	h := a.Handler(nil)
	var closeNext atomic.Bool
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if closeNext.CompareAndSwap(true, false) {
			w.Header().Set("Connection", "close")
		}
		h.ServeHTTP(w, r)
	}))
	defer srv.Close()
	u, _ := neturl.Parse(srv.URL + "/tsa")

	good, err := prepareTSARequests(3)
	if err != nil {
		t.Fatal(err)
	}
	sha1Req := tsp.Request{MessageImprint: tsp.MessageImprint{HashAlgorithm: tsp.OIDSHA1, HashedMessage: make([]byte, 20)}}
	bad, err := sha1Req.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	wire := wireRequests(u, append(good, bad))
	c := newBenchConn(u.Host)
	defer c.close()
	ctx := context.Background()
	for i := range 3 {
		if err := c.roundTrip(ctx, wire[i]); err != nil {
			t.Fatalf("granted request %d: %v", i, err)
		}
	}
	if err := c.roundTrip(ctx, wire[3]); err == nil || !strings.Contains(err.Error(), "badAlg") {
		t.Fatalf("SHA-1 request: %v, want a badAlg refusal", err)
	}
	closeNext.Store(true)
	if err := c.roundTrip(ctx, wire[0]); err != nil {
		t.Fatalf("request answered with Connection: close: %v", err)
	}
	if c.c != nil {
		t.Fatal("connection kept after Connection: close")
	}
	if err := c.roundTrip(ctx, wire[1]); err != nil {
		t.Fatalf("request after reconnecting: %v", err)
	}
	// Wrong media type: HTTP 415 with a problem body.
	wrong := []byte(strings.Replace(string(wire[0]), timestamp.QueryContentType, "text/plain", 1))
	if err := c.roundTrip(ctx, wrong); err == nil || !strings.Contains(err.Error(), "HTTP 415") {
		t.Fatalf("wrong content type: %v, want HTTP 415", err)
	}

	// A granted reply checks; damaged ones do not.
	resp, _ := a.Respond(ctx, good[0], "")
	if err := checkGranted(resp); err != nil {
		t.Fatalf("granted reply: %v", err)
	}
	for name, b := range map[string][]byte{
		"truncated":      resp[:len(resp)-1],
		"trailing":       append(append([]byte{}, resp...), 0),
		"empty":          nil,
		"status only":    {0x30, 0x05, 0x30, 0x03, 0x02, 0x01, 0x00},
		"granted + junk": {0x30, 0x09, 0x30, 0x03, 0x02, 0x01, 0x00, 0x30, 0x02, 0x05, 0x00},
	} {
		if err := checkGranted(b); err == nil {
			t.Errorf("%s reply passed the check", name)
		}
	}
}

// TestReadReplyHead checks the status line and header parser.
func TestReadReplyHead(t *testing.T) {
	for _, tc := range []struct {
		head       string
		status, n  int
		keep, fail bool
	}{
		{head: "HTTP/1.1 200 OK\r\nContent-Length: 12\r\n\r\n", status: 200, n: 12, keep: true},
		{head: "HTTP/1.1 200\r\ncontent-length:3\r\nConnection: close\r\n\r\n", status: 200, n: 3},
		{head: "HTTP/1.1 415 Unsupported Media Type\r\nContent-Length: 0\r\n\r\n", status: 415, keep: true},
		{head: "HTTP/1.1 200 OK\r\n\r\n", fail: true},
		{head: "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n", fail: true},
		{head: "HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n", fail: true},
		{head: "HTTP/1.0 200 OK\r\nContent-Length: 1\r\n\r\n", fail: true},
		{head: "HTTP/1.1 2x0 OK\r\nContent-Length: 1\r\n\r\n", fail: true},
		{head: "HTTP/1.1 200 OK\r\nbroken\r\n\r\n", fail: true},
		{head: "HTTP/1.1 200 OK\r\nContent-Length: 1\r\n", fail: true},
		{head: "HTTP/1.1 200", fail: true},
	} {
		status, n, keep, err := readReplyHead(newTestReader(tc.head))
		if (err != nil) != tc.fail || !tc.fail && (status != tc.status || n != tc.n || keep != tc.keep) {
			t.Errorf("%q: status %d length %d keep %t err %v", tc.head, status, n, keep, err)
		}
	}
}

func newTestReader(s string) *bufio.Reader { return bufio.NewReader(strings.NewReader(s)) }

// FuzzBenchReply feeds arbitrary bytes to the load generator's reply
// parsers: they return an error or accept, never panic, and accept a body
// only if tsp.ParseResponse reads it as granted with a token.
func FuzzBenchReply(f *testing.F) {
	f.Add([]byte("HTTP/1.1 200 OK\r\nContent-Length: 7\r\n\r\n"), []byte{0x30, 0x05, 0x30, 0x03, 0x02, 0x01, 0x00})
	f.Add([]byte("HTTP/1.1 415 x\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"), []byte{0x30, 0x03, 0x02, 0x01, 0x02})
	f.Add([]byte("HTTP/1.1 200\r\n\r\n"), []byte{0x30, 0x0f, 0x30, 0x03, 0x02, 0x01, 0x00, 0x30, 0x08, 0x30, 0x0b, 0x06, 0x09, 0x2a, 0x86, 0x48})
	f.Fuzz(func(t *testing.T, head, body []byte) {
		_, _, _, _ = readReplyHead(bufio.NewReader(bytes.NewReader(head)))
		if checkGranted(body) == nil {
			r, err := tsp.ParseResponse(body)
			if err != nil || r.Status.Status != tsp.StatusGranted || len(r.Token) == 0 {
				t.Fatalf("checkGranted accepted %x, which parses as %+v, %v", body, r, err)
			}
		}
	})
}

// TestTSALatencyHistogram reads the TSA's latency histogram from /metrics
// text and finds the bucket of the 99th percentile of what happened
// between two scrapes.
func TestTSALatencyHistogram(t *testing.T) {
	scrape := func(counts ...int) latencyHist {
		t.Helper()
		les := []string{"0.001", "0.005", "0.01", "0.025", "+Inf"}
		var b strings.Builder
		b.WriteString("# HELP x\nthiqa_tsa_request_duration_seconds_bucket{status=\"rejection\",le=\"0.001\"} 99\n")
		for i, le := range les {
			fmt.Fprintf(&b, "thiqa_tsa_request_duration_seconds_bucket{status=\"granted\",le=\"%s\"} %d\n", le, counts[i])
		}
		h, err := parseTSALatency(strings.NewReader(b.String()))
		if err != nil {
			t.Fatal(err)
		}
		return h
	}
	before := scrape(100, 100, 100, 100, 100)
	after := scrape(1000, 1089, 1100, 1100, 1100) // 1,000 new: 900 ≤ 1 ms, 989 ≤ 5 ms, all ≤ 10 ms
	if le, ok := after.sub(before).quantile(0.99); !ok || le != 10*time.Millisecond {
		t.Fatalf("p99 bucket %v %t, want 10ms", le, ok)
	}
	if le, ok := after.sub(before).quantile(0.5); !ok || le != time.Millisecond {
		t.Fatalf("p50 bucket %v %t, want 1ms", le, ok)
	}
	if _, ok := scrape(0, 0, 0, 0, 5).quantile(0.99); ok {
		t.Fatal("a quantile in the +Inf bucket has a bound")
	}
	if _, ok := before.sub(before).quantile(0.99); ok {
		t.Fatal("an empty histogram has a quantile")
	}
	if _, err := parseTSALatency(strings.NewReader("process_cpu_seconds_total 3\n")); err == nil {
		t.Fatal("metrics without the histogram accepted")
	}
}
