package inprocess

import (
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"
)

type refuse struct{}

func (refuse) RoundTrip(*http.Request) (*http.Response, error) { return nil, errors.New("network") }

// TestTransport: the own host is answered by the handler (status, headers,
// body, remote address "in-process"); another host goes to Next; a
// panicking handler fails the request instead of the process.
func TestTransport(t *testing.T) {
	tr := &Transport{Host: "thiqa.example:8443", Next: refuse{}, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/panic" {
			panic("boom")
		}
		w.Header().Set("Content-Type", "text/plain")
		w.WriteHeader(http.StatusTeapot)
		_, _ = io.WriteString(w, r.RemoteAddr+" "+r.URL.RequestURI())
	})}
	c := &http.Client{Transport: tr}
	resp, err := c.Get("https://thiqa.example:8443/crl/citizen.crl?x=1")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusTeapot || resp.Header.Get("Content-Type") != "text/plain" || string(body) != "in-process /crl/citizen.crl?x=1" {
		t.Fatalf("own host: %d %v %q", resp.StatusCode, resp.Header, body)
	}
	if _, err := c.Get("https://elsewhere.example/"); err == nil || !strings.Contains(err.Error(), "network") {
		t.Fatalf("another host did not go to Next: %v", err)
	}
	if _, err := c.Get("https://thiqa.example:8443/panic"); err == nil {
		t.Fatal("a panicking handler answered")
	}
}
