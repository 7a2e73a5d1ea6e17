package timestamp

import (
	"bytes"
	"crypto/sha256"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/thiqa/thiqa/timestamp/tsp"
)

// post sends body to url and returns the parsed reply.
func post(t testing.TB, client *http.Client, url string, body io.Reader, length int64) (*tsp.Response, error) {
	req, err := http.NewRequest(http.MethodPost, url, body)
	if err != nil {
		return nil, err
	}
	req.ContentLength = length
	req.Header.Set("Content-Type", QueryContentType)
	resp, err := client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != ReplyContentType ||
		resp.Header.Get("Content-Length") != fmt.Sprint(len(raw)) || resp.Header.Get("Cache-Control") != "no-store" {
		return nil, fmt.Errorf("HTTP %d %v", resp.StatusCode, resp.Header)
	}
	return tsp.ParseResponse(raw)
}

// TestHandlerConcurrentBodies sends distinct requests from many keep-alive
// connections at once, some with a body of unknown length (chunked): each
// token carries its own request's imprint and nonce, so recycled request
// buffers never mix requests.
func TestHandlerConcurrentBodies(t *testing.T) {
	tsa := newTestTSA(t, Config{}, nil)
	srv := httptest.NewServer(tsa.Handler(nil))
	defer srv.Close()
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for g := range 8 {
		wg.Go(func() {
			client := &http.Client{Transport: &http.Transport{}}
			defer client.CloseIdleConnections()
			for i := range 40 {
				d := sha256.Sum256(fmt.Appendf(nil, "%d/%d", g, i))
				nonce := big.NewInt(int64(g<<20 | i + 1))
				der := goQuery(t, func(r *tsp.Request) { r.MessageImprint.HashedMessage = d[:]; r.Nonce = nonce })
				var body io.Reader = bytes.NewReader(der)
				length := int64(len(der))
				if i%3 == 0 {
					body, length = struct{ io.Reader }{body}, -1 // chunked
				}
				resp, err := post(t, client, srv.URL, body, length)
				if err != nil {
					errs <- err
					return
				}
				if resp.Status.Status != tsp.StatusGranted {
					errs <- fmt.Errorf("request %d/%d: %s", g, i, resp.Status)
					return
				}
				tok, err := tsp.ParseToken(resp.Token)
				if err != nil {
					errs <- err
					return
				}
				if !bytes.Equal(tok.Info.MessageImprint.HashedMessage, d[:]) || tok.Info.Nonce.Cmp(nonce) != 0 {
					errs <- fmt.Errorf("request %d/%d got the token of another request", g, i)
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
}

// TestHandlerTruncatedBody: a body shorter than its Content-Length gets
// HTTP 400 and consumes no serial.
func TestHandlerTruncatedBody(t *testing.T) {
	tsa := newTestTSA(t, Config{}, nil)
	srv := httptest.NewServer(tsa.Handler(nil))
	defer srv.Close()
	good := goQuery(t, nil)
	conn, err := net.Dial("tcp", strings.TrimPrefix(srv.URL, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	fmt.Fprintf(conn, "POST / HTTP/1.1\r\nHost: x\r\nContent-Type: %s\r\nContent-Length: %d\r\n\r\n", QueryContentType, len(good)+10)
	conn.Write(good)
	conn.(*net.TCPConn).CloseWrite()
	reply, _ := io.ReadAll(conn)
	if !bytes.HasPrefix(reply, []byte("HTTP/1.1 400 ")) {
		t.Fatalf("truncated body answered %q", reply[:min(len(reply), 40)])
	}
	if tsa.serials.n.Load() != 0 {
		t.Error("a serial was consumed for a truncated body")
	}
}
