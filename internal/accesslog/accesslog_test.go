package accesslog

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/thiqa/thiqa/internal/clientip"
)

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
	h := proxies.Middleware(Handler(logger, http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {})))
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
