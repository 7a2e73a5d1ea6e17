package ocspbench

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

func TestRunCountsResponses(t *testing.T) {
	var posts, gets atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/ocsp-response")
		if r.Method == http.MethodGet {
			gets.Add(1)
			if !strings.HasPrefix(r.URL.Path, "/ocsp/") {
				t.Errorf("GET %s", r.URL.Path)
			}
		} else {
			posts.Add(1)
			b, _ := io.ReadAll(r.Body)
			if string(b) == "bad" {
				w.Write([]byte{0x30, 0x03, 0x0a, 0x01, 0x01}) // malformedRequest
				return
			}
		}
		w.Write([]byte{0x30, 0x82, 0x00, 0x05, 0x0a, 0x01, 0x00, 0xa0, 0x00}) // successful (shape only)
	}))
	defer srv.Close()
	res, err := Run(context.Background(), Options{URL: srv.URL + "/ocsp", Requests: [][]byte{[]byte("good"), []byte("bad")},
		Conns: 2, Duration: 300 * time.Millisecond})
	if err != nil || res.Responses == 0 || res.Errors == 0 || res.P99 < res.P50 {
		t.Fatalf("%v %v", res, err)
	}
	if d := int64(res.Responses+res.Errors) - posts.Load(); d < -2 || d > 2 {
		t.Fatalf("%d counted, %d served", res.Responses+res.Errors, posts.Load())
	}
	res, err = Run(context.Background(), Options{URL: srv.URL + "/ocsp", Requests: [][]byte{{0xfb, 0xff}}, Conns: 1, Duration: 200 * time.Millisecond, GET: true})
	if err != nil || res.Responses == 0 || res.Errors != 0 || gets.Load() == 0 {
		t.Fatalf("GET: %v %v", res, err)
	}
	if _, err := Run(context.Background(), Options{URL: "http://127.0.0.1:1/ocsp", Requests: [][]byte{{1}}, Duration: 100 * time.Millisecond}); err == nil {
		t.Fatal("no server: no error")
	}
}
